// GET /volumes/VOLUME/changes?from=VERSION[&to=VERSION]: the ranges changed between two versions with TO's bytes there,
// in one response (docs/BACKUP.md, "The changes stream"): what an incremental backup applies to the image of FROM, like
// `rbd export-diff`. TO (default: the volume's current version) is resolved once, before anything is sent, to a version
// id, and everything is read as of it while the volume goes on taking writes. Both versions are checked before the
// body: 400 for a malformed one, 404 for a volume or version that is not there or a version of another volume's
// history, 410 for one compaction took (naming the oldest still available). A failure after the body began aborts the
// connection: the reader misses the end record. Through any node: the gateway asks the volume's primary for the
// ranges and reads the version where it is held.
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CloudFs.Host.Http;

/// <param name="bufferSize">The bytes held before they are sent (the stream's buffer, besides a window's ranges and the
/// small records read ahead).</param>
internal sealed class ChangesRoute(IVolumeGateway gateway, int bufferSize)
{
    /// <summary>The ranges are asked for a window of the volume at a time: at most 2 MiB of them (a window of
    /// alternating 512-byte blocks) are held however large the diff is.</summary>
    public const long Window = 128L << 20;
    /// <summary>Records up to this long are read ahead, <see cref="ReadAheadRecords"/> at most (2 MiB between them):
    /// on a node that does not hold the volume each read is a round trip to its primary.</summary>
    private const int SmallRecord = 64 << 10, ReadAheadRecords = 32;

    public void Map(IEndpointRouteBuilder app) => app.MapGet("/volumes/{id}/changes", ChangesAsync);

    private async Task ChangesAsync(HttpContext ctx)
    {
        var ct = ctx.RequestAborted;
        var from = Version(ctx, "from") ?? throw new BadHttpRequestException("the changes stream needs ?from=VERSION[&to=VERSION]", StatusCodes.Status400BadRequest);
        var to = Version(ctx, "to");
        var text = (string?)ctx.Request.RouteValues["id"] ?? "";
        if (!Id160.TryParse(text, out _) && VolumeName.Check(text) is not null)
            throw new BadHttpRequestException($"'{text}' is not a volume id (40 hex characters) nor a volume name", StatusCodes.Status400BadRequest);
        var volume = (await gateway.FindAsync(text, ct))?.BaseId
            ?? throw new BadHttpRequestException($"no volume {text} on this cluster", StatusCodes.Status404NotFound);

        // Both versions checked, and TO fixed, before a byte of the body.
        ChangedSinceResult resolved;
        try { resolved = await gateway.ChangedSinceAsync(volume, from, to, 0, 0, ct); }
        catch (InvalidRangeException e) { throw new BadHttpRequestException(e.Message, StatusCodes.Status404NotFound); }
        if (resolved.To == Id160.Zero)
            throw new BadHttpRequestException($"the primary of volume {volume} runs a version that does not name the version a diff goes up to; upgrade it", StatusCodes.Status503ServiceUnavailable);
        var (toVersion, size) = (resolved.To, resolved.ToSizeBytes);

        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "application/octet-stream";
        using var writer = new ChangeStreamWriter(ctx.Response.Body, bufferSize);
        writer.WriteHeader(size, from, toVersion);
        ValueTask Read(long offset, Memory<byte> into) => gateway.ReadVersionAsync(volume, toVersion, offset, into, ct);
        // Small records are read ahead, several at once; a large one is read into the writer's buffer as it goes.
        await using var ahead = new ReadAhead(Read, ReadAheadRecords);
        ValueTask WriteNextAsync() => ahead.NextAsync((offset, data) => writer.WriteRecordAsync(offset, data.Length, (at, into) =>
        {
            data.Slice((int)(at - offset), into.Length).CopyTo(into);
            return ValueTask.CompletedTask;
        }, ct));
        await foreach (var range in MergedAsync(volume, from, toVersion, size, ct))
            for (var at = range.Offset; at < range.End; at += ChangeStreamWriter.MaxRecordLength)
            {
                var length = (int)Math.Min(ChangeStreamWriter.MaxRecordLength, range.End - at);
                if (length <= SmallRecord)
                {
                    if (ahead.IsFull) await WriteNextAsync();
                    ahead.Start(at, length);
                    continue;
                }
                while (ahead.Count > 0) await WriteNextAsync();
                await writer.WriteRecordAsync(at, length, Read, ct);
            }
        while (ahead.Count > 0) await WriteNextAsync();
        await writer.EndAsync(ct);
    }

    /// <summary>The changed ranges within TO's size, window by window, merged across the windows' edges.</summary>
    private async IAsyncEnumerable<ChangedRange> MergedAsync(Id160 volume, Id160 from, Id160 to, long size,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        ChangedRange? pending = null;
        for (long at = 0; at < size; at += Window)
        {
            var part = await gateway.ChangedSinceAsync(volume, from, to, at, Math.Min(Window, size - at), ct);
            foreach (var r in part.Ranges)
            {
                if (pending is { } p && p.End == r.Offset) { pending = p with { Length = p.Length + r.Length }; continue; }
                if (pending is { } done) yield return done;
                pending = r;
            }
        }
        if (pending is { } last) yield return last;
    }

    private static Id160? Version(HttpContext ctx, string key)
    {
        if (ctx.Request.Query[key].FirstOrDefault() is not { Length: > 0 } text) return null;
        return Id160.TryParse(text, out var version)
            ? version
            : throw new BadHttpRequestException($"{key}: '{text}' is not a version id (40 hex characters)", StatusCodes.Status400BadRequest);
    }
}
