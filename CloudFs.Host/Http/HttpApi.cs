// The node's HTTP API on Kestrel: /heads, /stream, POST /log (the log itself), /volumes/<id> byte ranges
// (through IVolumeGateway, the same path as NBD), /volumes/<id>/changes (ChangesRoute), /metrics, /cluster, /health and /ready, and the status page at /.
// HTTPS with --tls (ClientCertificateGate).
using System.Buffers;
using System.Net;
using System.Text;
using System.Text.Json;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;
using CloudFs.Host.Cli;
using CloudFs.Host.Metrics;
using System.Security.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace CloudFs.Host.Http;

internal sealed class HttpApi : IAsyncDisposable
{
    private const string PlainText = "text/plain";
    private const string Binary = "application/octet-stream";

    private readonly HttpApiOptions _options;
    private readonly IVolumeGateway _gateway;
    private readonly IVersionLog _log;
    private readonly IClusterView _cluster;
    private readonly ManagementRoutes _management;
    private readonly Action<string>? _logLine;
    private readonly HostMetrics _metrics;
    private readonly VolumeHealthSeries _volumeSeries;
    private readonly WebApplication _app;

    public HttpApi(HttpApiOptions options, IVolumeGateway gateway, IVersionLog log, IClusterView cluster, HostMetrics metrics, Action<string>? logLine)
    {
        if (options.ChunkSize <= 0 || options.ChunkSize % LogStore.BlockSize != 0)
            throw new ArgumentException("the chunk size must be a positive multiple of 512", nameof(options));
        _options = options;
        _gateway = gateway;
        _log = log;
        _cluster = cluster;
        _management = new ManagementRoutes(cluster);
        _metrics = metrics;
        _volumeSeries = new VolumeHealthSeries(_management.AllVolumesAsync);
        _logLine = logLine;

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = "cloudfs",
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, QuietHostLifetime>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(options.Endpoint, listen =>
            {
                if (options.Tls is not { } tls) return;
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = tls.Certificate,
                    // Asked for, not required: the open endpoints serve anyone; ClientCertificateGate judges the rest,
                    // so a refused client gets a status and a reason instead of a failed handshake.
                    ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                    ClientCertificateValidation = (_, _, _) => true,
                    CheckCertificateRevocation = false,
                    SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                });
            });
            k.AddServerHeader = false;
            // Bodies are bounded in size and rate; POST /log lifts both for its request (a stream of any length that
            // may idle: `cloudfs stream --follow | cloudfs apply`). Responses (/stream?…&follow=1) may idle too.
            k.Limits.MaxRequestBodySize = options.MaxPutBytes;
            k.Limits.MinRequestBodyDataRate = options.MinBodyRate > 0 ? new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(options.MinBodyRate, options.MinBodyRateGrace) : null;
            k.Limits.MinResponseDataRate = null;
        });
        _app = builder.Build();
        _app.Use(Guard);
        if (options.Tls is { } credentials) _app.Use(new ClientCertificateGate(credentials).InvokeAsync);
        _app.MapMethods("/", ["GET", "HEAD"], StatusPage.WriteAsync);
        _app.MapGet("/heads", Heads);
        _app.MapGet("/stream", Stream);
        _app.MapPost("/log", Log);
        _app.MapMethods("/volumes/{id}", ["GET", "HEAD"], ReadVolume);
        _app.MapPut("/volumes/{id}", WriteVolume);
        _app.MapGet("/cluster", Cluster);
        _management.Map(_app);
        new DetachRoute(_gateway, _management).Map(_app);
        new ChangesRoute(_gateway, options.ChunkSize).Map(_app);
        _app.MapMethods("/health", ["GET", "HEAD"], ctx => Health(ctx, _cluster.Unhealthy));
        _app.MapMethods("/ready", ["GET", "HEAD"], ctx => Health(ctx, _cluster.NotReady));
        _app.MapGet("/metrics", Metrics);
        _app.MapFallback(ctx => Reply(ctx, StatusCodes.Status404NotFound,
            $"no such resource {ctx.Request.Method} {ctx.Request.Path}; try / (the status page), /heads, /stream?VERSION, POST /log, /volumes/ID, /volumes/ID/changes?from=VERSION[&to=VERSION], /metrics, /cluster, /health, /ready, " +
            string.Join(", ", ManagementRoutes.Paths)));
    }

    /// <summary>The address Kestrel bound (the real port when the options asked for port 0).</summary>
    public IPEndPoint BoundEndPoint { get; private set; } = null!;

    public async Task StartAsync(CancellationToken ct)
    {
        await _app.StartAsync(ct);
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address);
        BoundEndPoint = new IPEndPoint(_options.Endpoint.Address, uri.Port);
    }

    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try { await _app.StopAsync(grace.Token); }
        catch (OperationCanceledException) { }
        await _app.DisposeAsync();
    }

    // Every failure becomes a status and one line of reason; a failure after the body started aborts the
    // connection (a short body must not pass for a complete one). The server itself never goes down.
    private async Task Guard(HttpContext ctx, RequestDelegate next)
    {
        try
        {
            await next(ctx);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception e)
        {
            var status = HttpStatusOf.Status(e);
            // An unexpected failure with its stack trace; an expected one (the cluster did not answer in time) in one line.
            if (status >= 500 && e is not CloudFsException)
                _logLine?.Invoke($"http: {ctx.Request.Method} {ctx.Request.Path}: {(e is BadHttpRequestException ? e.Message : e.ToString())}");
            if (ctx.Response.HasStarted) { ctx.Abort(); return; }
            ctx.Response.Clear();
            await Reply(ctx, status, e is CloudFsException or BadHttpRequestException ? e.Message : $"internal error: {e.Message}");
        }
    }

    private static Task Reply(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = PlainText;
        return ctx.Response.WriteAsync(message.TrimEnd('\n') + "\n");
    }

    /// <summary>GET /metrics: the registry's series (this node's own), then every volume's health and lag series.</summary>
    private async Task Metrics(HttpContext ctx)
    {
        ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await _metrics.Registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        await _volumeSeries.WriteAsync(ctx.Response.Body, ctx.RequestAborted);
    }

    private Task Heads(HttpContext ctx)
    {
        var text = new StringBuilder();
        foreach (var v in _log.ListVolumes().OrderBy(v => v.BaseId))
            text.Append(v.BaseId.ToString()).Append(':').Append(v.CurrentVersion.ToString()).Append('\n');
        ctx.Response.ContentType = PlainText;
        return ctx.Response.WriteAsync(text.ToString());
    }

    /// <summary>"?VERSION[&amp;follow=1]" (the original's form); "version=VERSION" is accepted too.</summary>
    internal static bool TryParseStreamQuery(string? query, out Id160 version, out bool follow, out string? error)
    {
        version = default;
        follow = false;
        error = null;
        var found = false;
        foreach (var part in (query ?? "").TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            var key = eq < 0 ? part : part[..eq];
            var value = eq < 0 ? null : Uri.UnescapeDataString(part[(eq + 1)..]);
            if (key == "follow") { follow = value is null or "1" or "true" or "yes"; continue; }
            var candidate = key == "version" ? value : (eq < 0 ? part : null);
            if (candidate is null) { error = $"unknown parameter '{key}'; the form is /stream?VERSION[&follow=1]"; return false; }
            if (found || !Id160.TryParse(candidate, out version)) { error = $"'{candidate}' is not a version id (40 hex characters)"; return false; }
            found = true;
        }
        if (!found) error = "the version is missing; the form is /stream?VERSION[&follow=1]";
        return found;
    }

    private async Task Stream(HttpContext ctx)
    {
        if (!TryParseStreamQuery(ctx.Request.QueryString.Value, out var version, out var follow, out var error))
        {
            await Reply(ctx, StatusCodes.Status400BadRequest, error!);
            return;
        }
        ctx.Response.ContentType = Binary;
        try
        {
            await _log.StreamAsync(version, ctx.Response.Body, follow, ctx.RequestAborted);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // A follower hung up: the normal end of a live stream.
        }
    }

    private static bool IsLoopback(IPAddress? address) =>
        address is not null && IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);

    private async Task Log(HttpContext ctx)
    {
        if (!_options.AllowRemoteLog && !IsLoopback(ctx.Connection.RemoteIpAddress))
        {
            await DrainAsync(ctx);
            await Reply(ctx, StatusCodes.Status403Forbidden, "POST /log is accepted from loopback only (set cloudfs.http.allow-remote-log = on to allow other addresses)");
            return;
        }
        // A stream has no length limit and may idle between entries (stream --follow | apply): lift both limits for it.
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = null;
        if (ctx.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate) rate.MinDataRate = null;
        // An import (a volume this host does not hold, created from the stream) is asked for explicitly. A refused
        // entry, a failed append and a broken request body all come back as the result's Error.
        var import = ctx.Request.Query["import"].ToString() is "1" or "true" or "on";
        var result = await _log.ApplyAsync(ctx.Request.Body, import, ctx.RequestAborted);
        if (result.Ok)
        {
            // `cloudfs apply --json` asks for the same answer as JSON: {"applied", "volume", "version"} (null without entries).
            if (ctx.Request.Headers.Accept.ToString().Contains("application/json", StringComparison.OrdinalIgnoreCase))
            {
                ctx.Response.StatusCode = StatusCodes.Status200OK;
                ctx.Response.ContentType = "application/json";
                var json = new System.Text.Json.Nodes.JsonObject
                {
                    ["applied"] = result.Applied,
                    ["volume"] = result.Volume?.ToString(),
                    ["version"] = result.Head?.ToString(),
                };
                await ctx.Response.WriteAsync(json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
                return;
            }
            var head = result.Volume is { } v && result.Head is { } h ? $"; {v}:{h}" : "";
            await Reply(ctx, StatusCodes.Status200OK, $"applied {result.Applied} entries{head}");
            return;
        }
        // Read the rest so the client gets the answer instead of a reset while it is still sending.
        await DrainAsync(ctx);
        // A chain this host's writer owns (it is the volume's primary) takes no entries from a stream: a conflict, like a fork.
        var status = result.IsRefused ? StatusCodes.Status403Forbidden : result.IsFork || result.IsClaimed ? StatusCodes.Status409Conflict : StatusCodes.Status400BadRequest;
        await Reply(ctx, status, $"entry {result.Applied + 1} of the stream was refused: {result.Error} ({result.Applied} entries before it were applied)");
    }

    internal static async Task DrainAsync(HttpContext ctx)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 << 10);
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
            limit.CancelAfter(TimeSpan.FromSeconds(30));
            while (await ctx.Request.Body.ReadAsync(buffer, limit.Token) > 0) { }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or BadHttpRequestException)
        {
            // Drained as much as reasonable; Kestrel closes the connection after the answer.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task<(Id160 Id, VolumeInfo? Info)> FindVolume(HttpContext ctx)
    {
        var text = (string?)ctx.Request.RouteValues["id"] ?? "";
        if (!Id160.TryParse(text, out var id))
        {
            // A name: found through the cluster's name index, then served as its id is.
            if (VolumeName.Check(text) is not null)
            {
                await Reply(ctx, StatusCodes.Status400BadRequest, $"'{text}' is not a volume id (40 hex characters) or name");
                return (default, null);
            }
            if (await _gateway.FindAsync(text, ctx.RequestAborted) is not { } named)
            {
                await Reply(ctx, StatusCodes.Status404NotFound, $"no volume named '{text}'");
                return (default, null);
            }
            return (named.BaseId, named);
        }
        var info = await _gateway.GetAsync(id, ctx.RequestAborted);
        if (info is null && !await RedirectToPrimary(ctx, id, fallbackStatus: 0))
            await Reply(ctx, StatusCodes.Status404NotFound, $"volume {id} is not held by this node");
        return (id, info);
    }

    /// <summary>307 to the primary's HTTP API when the cluster knows it; else <paramref name="fallbackStatus"/> (0: nothing written).</summary>
    private async Task<bool> RedirectToPrimary(HttpContext ctx, Id160 volume, int fallbackStatus)
    {
        string? primary = null;
        try { primary = await _cluster.PrimaryHttpAsync(volume, ctx.RequestAborted); }
        catch (Exception e) when (e is CloudFsException or TimeoutException or Akka.Actor.AskTimeoutException) { }
        var self = AddressParser.Format(BoundEndPoint ?? _options.Endpoint);
        if (primary is not null && primary != self)
        {
            ctx.Response.StatusCode = StatusCodes.Status307TemporaryRedirect;
            ctx.Response.Headers.Location = $"{ctx.Request.Scheme}://{primary}{ctx.Request.Path}{ctx.Request.QueryString}";
            ctx.Response.ContentType = PlainText;
            await ctx.Response.WriteAsync($"volume {volume} is served by its primary at {primary}\n");
            return true;
        }
        if (fallbackStatus == 0) return false;
        await Reply(ctx, fallbackStatus, $"this node is not the primary of volume {volume} and no primary is known");
        return true;
    }

    private async Task ReadVolume(HttpContext ctx)
    {
        var (id, info) = await FindVolume(ctx);
        if (info is null) return;
        var size = info.SizeBytes;
        var range = ByteRange.ParseRange(ctx.Request.Headers.Range.ToString(), size);
        ctx.Response.Headers.AcceptRanges = "bytes";
        switch (range.Kind)
        {
            case RangeKind.Invalid:
                await Reply(ctx, StatusCodes.Status400BadRequest, range.Reason!);
                return;
            case RangeKind.Unsatisfiable:
                ctx.Response.Headers.ContentRange = $"bytes */{size}";
                await Reply(ctx, StatusCodes.Status416RangeNotSatisfiable, $"the range lies outside the volume's {size} bytes");
                return;
        }
        var status = range.Kind == RangeKind.Satisfiable ? StatusCodes.Status206PartialContent : StatusCodes.Status200OK;
        var isHead = HttpMethods.IsHead(ctx.Request.Method);
        if (size == 0 || isHead)
        {
            SetReadHeaders(ctx, status, range, size);
            return;
        }

        var chunk = _options.ChunkSize;
        var buffer = ArrayPool<byte>.Shared.Rent(chunk);
        try
        {
            // The gateway reads whole 512-byte blocks: read the aligned cover and send the asked bytes of it.
            var pos = range.Start & ~(long)(LogStore.BlockSize - 1);
            var end = range.End + 1;
            var first = true;
            while (pos < end)
            {
                var alignedEnd = Math.Min(size, (end + LogStore.BlockSize - 1) & ~(long)(LogStore.BlockSize - 1));
                var n = (int)Math.Min(chunk, alignedEnd - pos);
                try
                {
                    await _gateway.ReadAsync(id, pos, buffer.AsMemory(0, n), ctx.RequestAborted);
                }
                catch (NotPrimaryException) when (first)
                {
                    await RedirectToPrimary(ctx, id, StatusCodes.Status409Conflict);
                    return;
                }
                if (first)
                {
                    // Headers only after the first read succeeded, so a failure can still get its own status.
                    SetReadHeaders(ctx, status, range, size);
                    first = false;
                }
                var from = (int)Math.Max(0, range.Start - pos);
                var to = (int)Math.Min(n, end - pos);
                await ctx.Response.Body.WriteAsync(buffer.AsMemory(from, to - from), ctx.RequestAborted);
                pos += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void SetReadHeaders(HttpContext ctx, int status, ByteRange range, long size)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = Binary;
        ctx.Response.ContentLength = size == 0 ? 0 : range.Length;
        if (status == StatusCodes.Status206PartialContent)
            ctx.Response.Headers.ContentRange = $"bytes {range.Start}-{range.End}/{size}";
    }

    private async Task WriteVolume(HttpContext ctx)
    {
        var (id, info) = await FindVolume(ctx);
        if (info is null) return;
        var size = info.SizeBytes;
        var range = ByteRange.ParseContentRange(ctx.Request.Headers.ContentRange.ToString(), size);
        if (range.Kind == RangeKind.Invalid)
        {
            await Reply(ctx, StatusCodes.Status400BadRequest, range.Reason!);
            return;
        }
        if (range.Kind == RangeKind.Unsatisfiable)
        {
            ctx.Response.Headers.ContentRange = $"bytes */{size}";
            await Reply(ctx, StatusCodes.Status416RangeNotSatisfiable, range.Reason!);
            return;
        }
        if (range.Start % LogStore.BlockSize != 0 || range.Length % LogStore.BlockSize != 0)
        {
            await Reply(ctx, StatusCodes.Status400BadRequest, $"bytes {range.Start}-{range.End}: a write must start and end on 512-byte boundaries");
            return;
        }
        if (range.Length > _options.MaxPutBytes)
        {
            await Reply(ctx, StatusCodes.Status413PayloadTooLarge, $"a PUT carries at most {_options.MaxPutBytes} bytes; split the write");
            return;
        }
        if (ctx.Request.ContentLength is { } declared && declared != range.Length)
        {
            await Reply(ctx, StatusCodes.Status400BadRequest, $"Content-Length {declared} does not match Content-Range bytes {range.Start}-{range.End} ({range.Length} bytes)");
            return;
        }
        if (!info.IsWritable)
        {
            await RedirectToPrimary(ctx, id, StatusCodes.Status409Conflict);
            return;
        }

        var length = (int)range.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            // The whole body first: a short or long body is refused before anything is written.
            var got = 0;
            while (got < length)
            {
                var n = await ctx.Request.Body.ReadAsync(buffer.AsMemory(got, length - got), ctx.RequestAborted);
                if (n == 0) break;
                got += n;
            }
            var extra = got == length ? await ctx.Request.Body.ReadAsync(new byte[1], ctx.RequestAborted) : 0;
            if (got != length || extra != 0)
            {
                await DrainAsync(ctx);
                await Reply(ctx, StatusCodes.Status400BadRequest, $"the body does not carry exactly the {length} bytes Content-Range announces; nothing was written");
                return;
            }
            for (var done = 0; done < length; done += _options.ChunkSize)
            {
                var n = Math.Min(_options.ChunkSize, length - done);
                try
                {
                    await _gateway.WriteAsync(id, range.Start + done, buffer.AsMemory(done, n), fua: false, ct: ctx.RequestAborted);
                }
                catch (NotPrimaryException) when (done == 0)
                {
                    await RedirectToPrimary(ctx, id, StatusCodes.Status409Conflict);
                    return;
                }
            }
            // HTTP has no FLUSH: a PUT that answered is durable.
            await _gateway.FlushAsync(id, ct: ctx.RequestAborted);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        ctx.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>200 "ok", or 503 with the reason (load balancers, compose and Kubernetes probes read the status).</summary>
    private static Task Health(HttpContext ctx, string? problem) =>
        problem is null ? Reply(ctx, StatusCodes.Status200OK, "ok") : Reply(ctx, StatusCodes.Status503ServiceUnavailable, problem);

    private async Task Cluster(HttpContext ctx)
    {
        var members = (ClusterMembers)await _management.AskAsync(new ShowCluster(), ManagementRoutes.QuickTimeout, StatusCodes.Status503ServiceUnavailable, ctx.RequestAborted);
        var first = await _management.PageAsync(null, unhealthyOnly: false, ctx.RequestAborted);
        ctx.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(ctx.Response.BodyWriter, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("self", members.SelfAddress);
        if (members.Leader is null) json.WriteNull("leader"); else json.WriteString("leader", members.Leader);
        // Every page names the hosts whose log device failed: the first one's word marks the members.
        var failed = first.FailedHosts.ToDictionary(f => f.HostId);
        json.WriteStartArray("members");
        foreach (var m in members.Members)
        {
            json.WriteStartObject();
            json.WriteString("address", m.Address);
            json.WriteStartArray("roles");
            foreach (var r in m.Roles) json.WriteStringValue(r);
            json.WriteEndArray();
            json.WriteString("status", m.Status);
            json.WriteString("reachability", m.Reachability);
            json.WriteString("hostId", m.HostId);
            // A host whose log device failed is primary of nothing until it is restarted on a good device.
            json.WriteString("device", failed.ContainsKey(m.HostId) ? "failed" : "ok");
            if (failed.TryGetValue(m.HostId, out var failure)) json.WriteString("deviceError", failure.Reason);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        // The volumes page by page, as placement answers them.
        json.WriteStartArray("volumes");
        await _management.WriteVolumesAsync(ctx, json, first, unhealthyOnly: false);
        json.WriteEndArray();
        json.WriteEndObject();
        await ManagementRoutes.EndAsync(ctx, json);
    }
}
