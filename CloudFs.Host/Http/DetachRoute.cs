// POST /volumes/VOLUME/detach[?force=1]: what `cloudfs detach` does (docs/ATTACH.md, "Taking an attachment over"). The
// volume's writer ends its read-write attachment lease: without force only when its holder stopped renewing (409 with
// the holder's name while it renews), with force whichever holds it (that client's connection is closed at its next
// renewal). Answers {"volume", "detached"}: who held it (null when nobody did).
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Management;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CloudFs.Host.Http;

internal sealed class DetachRoute(IVolumeGateway gateway, ManagementRoutes management)
{
    public void Map(IEndpointRouteBuilder app) => app.MapPost("/volumes/{id}/detach", DetachAsync);

    private async Task DetachAsync(HttpContext ctx)
    {
        var text = (string?)ctx.Request.RouteValues["id"] ?? "";
        var force = ctx.Request.Query["force"].FirstOrDefault() is "1" or "true" or "yes" or "on";
        // An id or a name; a volume that is not there is a 404 with the resolver's sentence.
        var volume = (VolumeSummary)await management.AskAsync(new GetVolume(text), ManagementRoutes.QuickTimeout, StatusCodes.Status404NotFound, ctx.RequestAborted);
        AttachmentReleased released;
        try { released = await gateway.ReleaseAttachmentAsync(new ReleaseAttachment(volume.Id, Lease: 0, force), ctx.RequestAborted); }
        catch (CloudFsException e)
        {
            throw new BadHttpRequestException($"volume {volume.Id}: its writer did not answer ({e.Message}); try again", StatusCodes.Status503ServiceUnavailable);
        }
        if (released.Refusal is { } refusal) throw new BadHttpRequestException(refusal, StatusCodes.Status409Conflict);
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = ManagementJson.MediaType;
        await System.Text.Json.JsonSerializer.SerializeAsync(ctx.Response.Body, new VolumeDetached(volume.Id, released.Holder), ManagementJson.Options, ctx.RequestAborted);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), ctx.RequestAborted);
    }
}
