// GET / on the HTTP port: the status page for people (members, volumes with health and replica lag, this node's
// throughput), one HTML document with its CSS and script inline, embedded in the executable; it refreshes itself from
// the node's JSON routes (/cluster, /metrics). With --tls it is behind the client-certificate gate like every route
// but the probes.
using System.Reflection;
using Microsoft.AspNetCore.Http;

namespace CloudFs.Host.Http;

internal static class StatusPage
{
    private static readonly Lazy<byte[]> Html = new(() =>
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("CloudFs.Host.Http.StatusPage.html")
            ?? throw new InvalidOperationException("the status page is not embedded in the executable");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static Task WriteAsync(HttpContext ctx)
    {
        ctx.Response.ContentType = "text/html; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-store";
        // Nothing from elsewhere: the page runs only its own inline script and talks only to this node.
        ctx.Response.Headers.ContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'";
        return ctx.Response.Body.WriteAsync(Html.Value, ctx.RequestAborted).AsTask();
    }
}
