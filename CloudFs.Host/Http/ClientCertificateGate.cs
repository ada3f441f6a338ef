// Who may call what over HTTPS: the read-only views of the node (heads, metrics, health, the cluster's membership)
// are open; every other endpoint, those that read or write volume data or change anything and any endpoint added
// later, needs a client certificate of the cluster's authority (a host's or an operator's). docs/SECURITY.md argues it.
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using CloudFs.Actors.Security;
using Microsoft.AspNetCore.Http;

namespace CloudFs.Host.Http;

internal sealed class ClientCertificateGate(ClusterTls tls)
{
    private const string PeerKey = "cloudfs.peer";

    // GET and HEAD only: none of these reveals volume data or changes anything. The status page (/) is a management
    // view for people and is gated like the other management routes.
    private static readonly HashSet<string> OpenPaths = new(StringComparer.Ordinal) { "/heads", "/metrics", "/health", "/ready", "/cluster" };

    // Kestrel keeps one certificate object per connection: each connection's certificate is validated once.
    private readonly ConditionalWeakTable<X509Certificate2, Verdict> _verdicts = new();

    /// <summary>True for the requests anyone who reaches the port may make.</summary>
    public static bool IsOpen(HttpRequest request) =>
        (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) && OpenPaths.Contains(request.Path.Value ?? "");

    /// <summary>Who the request's client certificate names, once the gate let it through (null for an open request).</summary>
    public static ClusterCertificate? Peer(HttpContext ctx) => ctx.Items.TryGetValue(PeerKey, out var peer) ? peer as ClusterCertificate : null;

    public async Task InvokeAsync(HttpContext ctx, RequestDelegate next)
    {
        if (!IsOpen(ctx.Request))
        {
            var certificate = ctx.Connection.ClientCertificate;
            if (certificate is null)
            {
                ctx.Response.Headers.WWWAuthenticate = "TLS-client-certificate";
                await Refuse(ctx, StatusCodes.Status401Unauthorized,
                    $"{ctx.Request.Method} {ctx.Request.Path} needs a client certificate of this cluster's authority (cloudfs cert issue CA --client NAME; curl --cert/--key, cloudfs --tls DIR); none was presented");
                return;
            }
            var verdict = _verdicts.GetValue(certificate, c => tls.TryValidate(c, TlsPeerRole.Client, out var identity, out var reason)
                ? new Verdict(identity, null)
                : new Verdict(null, reason));
            if (verdict.Identity is null)
            {
                await Refuse(ctx, StatusCodes.Status403Forbidden, $"{ctx.Request.Method} {ctx.Request.Path} refused: {verdict.Reason}");
                return;
            }
            ctx.Items[PeerKey] = verdict.Identity;
        }
        await next(ctx);
    }

    private static async Task Refuse(HttpContext ctx, int status, string message)
    {
        // Read what the client still sends (bounded by max-body-size and the body rate) so it gets the answer, not a reset.
        await HttpApi.DrainAsync(ctx);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain";
        await ctx.Response.WriteAsync(message + "\n");
    }

    private sealed record Verdict(ClusterCertificate? Identity, string? Reason);
}
