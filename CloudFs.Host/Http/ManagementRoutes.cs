// The management API on the node's HTTP server, what the CLI's management commands call (ManagementHttpClient): each
// route turns a request into one management message for this node's management actor and its answer into JSON
// (ManagementJson), a refusal (CommandFailed) into a status with its one-line reason. Adding a command is adding a route
// here. Listings are streamed page by page (ListVolumePage): no message and no response buffer grows with the number of volumes.
using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;
using CloudFs.Host.Cli;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CloudFs.Host.Http;

internal sealed class ManagementRoutes(IClusterView cluster)
{
    /// <summary>How long a question that the management actor answers from memory may take.</summary>
    public static readonly TimeSpan QuickTimeout = TimeSpan.FromSeconds(20);
    /// <summary>Creation and branching wait for the replicas (placement bounds the wait itself).</summary>
    public static readonly TimeSpan CreateTimeout = TimeSpan.FromSeconds(90);
    /// <summary>rm asks every member about attachments, then the volume's primary appends the entry; a purge asks
    /// every host holding each volume.</summary>
    public static readonly TimeSpan ChangeTimeout = TimeSpan.FromSeconds(60);
    /// <summary>A scrub or a deep verify reads every live block of the copies concerned: hours on big disks.</summary>
    public static readonly TimeSpan LongTimeout = TimeSpan.FromHours(25);

    public const long DefaultVolumeSize = 8L << 30;
    public const int DefaultReplicas = 3;

    public static readonly string[] Paths =
        ["POST /volumes", "GET /volumes", "GET /volumes/VOLUME/info", "DELETE /volumes/VOLUME", "POST /volumes/VOLUME/resize", "POST /volumes/VOLUME/detach",
         "GET /trash", "POST /trash/VOLUME/restore", "DELETE /trash[/VOLUME]", "POST /versions/VERSION/branch", "POST /versions/VERSION/protect|unprotect", "GET /volumes/VOLUME/diff?from=VERSION[&to=VERSION]", "GET /status", "GET /cluster/members",
         "GET /cluster/leader|status", "POST /cluster/down-unreachable|join|leave|down", "GET /sharding/regions|stats", "POST /scrub", "POST /volumes/VOLUME/verify"];

    public void Map(IEndpointRouteBuilder app)
    {
        // Volumes
        app.MapPost("/volumes", CreateVolume);
        app.MapGet("/volumes", ListVolumes);
        Route(app, "GET", "/volumes/{id}/info", ctx => new GetVolume(Volume(ctx)), QuickTimeout, StatusCodes.Status404NotFound);
        app.MapPost("/versions/{version}/branch", Branch);
        Route(app, "POST", "/versions/{version}/protect", ctx => new ProtectVersion(Volume(ctx, "version"), Protect: true), ChangeTimeout);
        Route(app, "POST", "/versions/{version}/unprotect", ctx => new ProtectVersion(Volume(ctx, "version"), Protect: false), ChangeTimeout);
        Route(app, "GET", "/volumes/{id}/diff", ctx => new DiffVersions(Volume(ctx), Query(ctx, "from") ??
            throw new BadHttpRequestException("the diff needs ?from=VERSION", StatusCodes.Status400BadRequest), Query(ctx, "to")),
            QuickTimeout, StatusCodes.Status404NotFound);
        // Lifecycle (VOLUME: an id or a name)
        Route(app, "DELETE", "/volumes/{id}", ctx => new RemoveVolume(Volume(ctx), Flag(ctx, "force")), ChangeTimeout);
        app.MapPost("/volumes/{id}/resize", Resize);
        app.MapGet("/trash", ListTrash);
        Route(app, "POST", "/trash/{id}/restore", ctx => new RestoreVolume(Volume(ctx)), ChangeTimeout);
        app.MapDelete("/trash", ctx => Purge(ctx, null));
        app.MapDelete("/trash/{id}", ctx => Purge(ctx, Volume(ctx)));
        // Health and membership
        app.MapGet("/status", Status);
        Route(app, "GET", "/cluster/members", _ => new ShowCluster(), QuickTimeout);
        foreach (var verb in new[] { "leader", "status" })
            Route(app, "GET", "/cluster/" + verb, _ => new ClusterCommand(verb, null), QuickTimeout);
        foreach (var verb in new[] { "down-unreachable", "join", "leave", "down" })
            Route(app, "POST", "/cluster/" + verb, ctx => new ClusterCommand(verb, ctx.Request.Query["address"].FirstOrDefault()), QuickTimeout,
                StatusCodes.Status400BadRequest);
        foreach (var verb in new[] { "regions", "stats" })
            Route(app, "GET", "/sharding/" + verb, _ => new ShardingCommand(verb), QuickTimeout);
        // Integrity
        Route(app, "POST", "/scrub", ctx => new ScrubVolumes(ctx.Request.Query["volume"].FirstOrDefault() is { Length: > 0 } v ? v : null),
            LongTimeout);
        Route(app, "POST", "/volumes/{id}/verify", ctx => new VerifyVolume(Volume(ctx), Flag(ctx, "deep")), LongTimeout);
    }

    /// <summary>A route answered by one management message: 200 with the answer as JSON, or <paramref name="refused"/>
    /// with the reason when the actor refuses (404 when the volume named is not there).</summary>
    private void Route(IEndpointRouteBuilder app, string method, string pattern, Func<HttpContext, IManagementMessage> request, TimeSpan timeout,
        int refused = StatusCodes.Status409Conflict) =>
        app.MapMethods(pattern, [method], async ctx =>
        {
            var answer = await AskAsync(request(ctx), timeout, refused, ctx.RequestAborted);
            await WriteJsonAsync(ctx, StatusCodes.Status200OK, answer, answer.GetType());
        });

    internal async Task<IManagementMessage> AskAsync(IManagementMessage request, TimeSpan timeout, int refused, CancellationToken ct)
    {
        IManagementMessage answer;
        try { answer = await cluster.AskAsync(request, timeout, ct); }
        catch (Akka.Actor.AskTimeoutException) { throw new BadHttpRequestException($"the cluster did not answer {request.GetType().Name} within {timeout.TotalSeconds:0} s", StatusCodes.Status503ServiceUnavailable); }
        if (answer is not CommandFailed failed) return answer;
        var status = failed.Reason.StartsWith(VolumeResolver.NotFound, StringComparison.Ordinal) ? StatusCodes.Status404NotFound
            // A version compaction took (diff, branch): gone, not unknown.
            : failed.Reason.Contains(VersionCompactedException.GoneMarker, StringComparison.Ordinal) ? StatusCodes.Status410Gone
            : refused;
        throw new BadHttpRequestException(failed.Reason.TrimEnd('.', '\n'), status);
    }

    private static async Task WriteJsonAsync(HttpContext ctx, int status, object value, Type type)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = ManagementJson.MediaType;
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, type, ManagementJson.Options, ctx.RequestAborted);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), ctx.RequestAborted);
    }

    /// <summary>The body of POST /volumes: every field optional (3 replicas, 8 GiB, async).</summary>
    internal sealed record CreateRequest(int? Replicas, JsonElement? Size, string? Mode, string? Name);

    /// <summary>POST /volumes: what `cloudfs newdisk` does; 201 with the new volume's `ls --json` object and its hosts
    /// (host id and address).</summary>
    private async Task CreateVolume(HttpContext ctx)
    {
        CreateRequest? body = null;
        if (ctx.Request.ContentLength is not 0)
        {
            try { body = await JsonSerializer.DeserializeAsync<CreateRequest>(ctx.Request.Body, ManagementJson.Options, ctx.RequestAborted); }
            catch (JsonException e) { throw new BadHttpRequestException($"the body is not a volume request (JSON with replicas, size, mode, name): {e.Message}", StatusCodes.Status400BadRequest); }
        }
        var replicas = body?.Replicas ?? DefaultReplicas;
        if (replicas < 1) throw new BadHttpRequestException($"replicas must be at least 1, not {replicas}", StatusCodes.Status400BadRequest);
        var size = Size(body?.Size);
        var mode = body?.Mode switch
        {
            null or "async" => VolumeMode.Async,
            "sync" => VolumeMode.Sync,
            var other => throw new BadHttpRequestException($"'{other}' is not a mode (sync or async)", StatusCodes.Status400BadRequest),
        };
        if (body?.Name is { } name && VolumeName.Check(name) is { } badName) throw new BadHttpRequestException(badName, StatusCodes.Status400BadRequest);
        var created = (VolumeCreated)await AskAsync(new CreateVolume(replicas, size, mode, body?.Name), CreateTimeout, StatusCodes.Status409Conflict, ctx.RequestAborted);
        await WriteCreatedAsync(ctx, created);
    }

    private static long Size(JsonElement? size)
    {
        if (size is not { } s || s.ValueKind == JsonValueKind.Null) return DefaultVolumeSize;
        long bytes;
        if (s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out bytes)) { }
        else if (s.ValueKind == JsonValueKind.String && SizeParser.TryParse(s.GetString()!, out bytes)) { }
        else throw new BadHttpRequestException($"size {s.GetRawText()} is not a size (bytes, or a string such as \"8G\")", StatusCodes.Status400BadRequest);
        if (bytes <= 0 || bytes % LogStore.BlockSize != 0)
            throw new BadHttpRequestException($"the volume size must be a positive multiple of {LogStore.BlockSize} bytes, not {bytes}", StatusCodes.Status400BadRequest);
        return bytes;
    }

    /// <summary>POST /versions/VERSION/branch (a volume id or name: its current version): 201 as POST /volumes.</summary>
    private async Task Branch(HttpContext ctx)
    {
        var version = Volume(ctx, "version");
        var created = (VolumeCreated)await AskAsync(new BranchVolume(version), CreateTimeout, StatusCodes.Status404NotFound, ctx.RequestAborted);
        await WriteCreatedAsync(ctx, created);
    }

    private async Task WriteCreatedAsync(HttpContext ctx, VolumeCreated created)
    {
        var summary = (VolumeSummary)await AskAsync(new GetVolume(created.VolumeId), QuickTimeout, StatusCodes.Status500InternalServerError, ctx.RequestAborted);
        var json = JsonSerializer.SerializeToNode(summary, ManagementJson.Options)!.AsObject();
        json["hosts"] = JsonSerializer.SerializeToNode(created.Hosts, ManagementJson.Options);
        ctx.Response.Headers.Location = $"/volumes/{created.VolumeId}/info";
        await WriteJsonAsync(ctx, StatusCodes.Status201Created, json, typeof(JsonObject));
    }

    /// <summary>GET /volumes[?unhealthy=1]: the `ls --json` array, written page by page as placement answers them.</summary>
    private async Task ListVolumes(HttpContext ctx)
    {
        var unhealthy = Flag(ctx, "unhealthy");
        // The first page before the status line: a cluster that cannot list still gets a status and a reason.
        var first = await PageAsync(null, unhealthy, ctx.RequestAborted);
        ctx.Response.ContentType = ManagementJson.MediaType;
        // Over the response's pipe: the serializer's synchronous flushes only hand bytes to the pipe; each page is sent by FlushAsync.
        await using var json = new Utf8JsonWriter(ctx.Response.BodyWriter, new JsonWriterOptions { Indented = true });
        json.WriteStartArray();
        await WriteVolumesAsync(ctx, json, first, unhealthy);
        json.WriteEndArray();
        await EndAsync(ctx, json);
    }

    internal async Task<VolumePage> PageAsync(string? after, bool unhealthyOnly, CancellationToken ct) =>
        (VolumePage)await AskAsync(new ListVolumePage(after, ListVolumePage.MaxLimit, unhealthyOnly), QuickTimeout, StatusCodes.Status503ServiceUnavailable, ct);

    /// <summary>Every volume not in the trash, page by page as placement answers them.</summary>
    internal async IAsyncEnumerable<VolumeSummary> AllVolumesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        string? after = null;
        do
        {
            var page = (VolumePage)await AskAsync(new ListVolumePage(after, ListVolumePage.MaxLimit), QuickTimeout, StatusCodes.Status503ServiceUnavailable, ct);
            foreach (var v in page.Volumes) yield return v;
            after = page.Next;
        } while (after is not null);
    }

    /// <summary>Writes <paramref name="first"/> and every page after it to <paramref name="json"/> (a writer over the
    /// response's pipe), sending each page as it is written; returns the hosts whose device failed (last page's word).</summary>
    internal async Task<IReadOnlyList<HostFailure>> WriteVolumesAsync(HttpContext ctx, Utf8JsonWriter json, VolumePage first, bool unhealthyOnly)
    {
        var page = first;
        while (true)
        {
            foreach (var v in page.Volumes) JsonSerializer.Serialize(json, v, ManagementJson.Options);
            json.Flush();
            await ctx.Response.BodyWriter.FlushAsync(ctx.RequestAborted);
            if (page.Next is null) return page.FailedHosts;
            page = await PageAsync(page.Next, unhealthyOnly, ctx.RequestAborted);
        }
    }

    /// <summary>Ends a JSON response written over the response's pipe with a newline.</summary>
    internal static async Task EndAsync(HttpContext ctx, Utf8JsonWriter json)
    {
        json.Flush();
        ctx.Response.BodyWriter.Write("\n"u8);
        await ctx.Response.BodyWriter.FlushAsync(ctx.RequestAborted);
    }

    /// <summary>GET /status: what `cloudfs status` prints: the members, the hosts whose device failed, and every volume
    /// that is not healthy.</summary>
    private async Task Status(HttpContext ctx)
    {
        var members = (ClusterMembers)await AskAsync(new ShowCluster(), QuickTimeout, StatusCodes.Status503ServiceUnavailable, ctx.RequestAborted);
        var first = await PageAsync(null, unhealthyOnly: true, ctx.RequestAborted);
        ctx.Response.ContentType = ManagementJson.MediaType;
        // Over the response's pipe: the serializer's synchronous flushes only hand bytes to the pipe; each page is sent by FlushAsync.
        await using var json = new Utf8JsonWriter(ctx.Response.BodyWriter, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WritePropertyName("cluster");
        JsonSerializer.Serialize(json, members, ManagementJson.Options);
        json.WriteStartArray("volumes");
        var failed = await WriteVolumesAsync(ctx, json, first, unhealthyOnly: true);
        json.WriteEndArray();
        json.WritePropertyName("failed_hosts");
        JsonSerializer.Serialize(json, failed, ManagementJson.Options);
        json.WriteEndObject();
        await EndAsync(ctx, json);
    }

    /// <summary>A VOLUME in the path: an id (40 hex characters) or a volume's name; the management actor resolves it.</summary>
    private static string Volume(HttpContext ctx, string key = "id")
    {
        var text = (string?)ctx.Request.RouteValues[key] ?? "";
        return Id160.TryParse(text, out _) || VolumeName.Check(text) is null
            ? text
            : throw new BadHttpRequestException($"'{text}' is not a volume id (40 hex characters) nor a volume name", StatusCodes.Status400BadRequest);
    }

    /// <summary>The body of POST /volumes/VOLUME/resize: the new size (bytes, or a string such as "16G").</summary>
    internal sealed record ResizeRequest(JsonElement? Size, bool? AllowShrink);

    /// <summary>POST /volumes/VOLUME/resize {"size": ..., "allow_shrink": false}: what `cloudfs resize` does; 200 with
    /// the volume's `ls --json` object.</summary>
    private async Task Resize(HttpContext ctx)
    {
        var volume = Volume(ctx);
        ResizeRequest? body;
        try { body = await JsonSerializer.DeserializeAsync<ResizeRequest>(ctx.Request.Body, ManagementJson.Options, ctx.RequestAborted); }
        catch (JsonException e) { throw new BadHttpRequestException($"the body is not a resize request (JSON with size, allow_shrink): {e.Message}", StatusCodes.Status400BadRequest); }
        if (body?.Size is not { ValueKind: not JsonValueKind.Null })
            throw new BadHttpRequestException("a resize request needs a size (bytes, or a string such as \"16G\")", StatusCodes.Status400BadRequest);
        var answer = await AskAsync(new ResizeVolume(volume, Size(body.Size), body.AllowShrink ?? false), ChangeTimeout, StatusCodes.Status409Conflict, ctx.RequestAborted);
        await WriteJsonAsync(ctx, StatusCodes.Status200OK, answer, answer.GetType());
    }

    /// <summary>GET /trash: what `cloudfs trash ls --json` prints, the `ls --json` objects of the volumes in the trash
    /// (with `trashed`).</summary>
    private async Task ListTrash(HttpContext ctx)
    {
        var trash = (VolumeList)await AskAsync(new ListTrash(), QuickTimeout, StatusCodes.Status503ServiceUnavailable, ctx.RequestAborted);
        await WriteJsonAsync(ctx, StatusCodes.Status200OK, trash.Volumes, typeof(IReadOnlyList<VolumeSummary>));
    }

    /// <summary>DELETE /trash (every volume in the trash) or /trash/VOLUME: what `cloudfs trash purge` does; 200 with
    /// the JSON array of the purged volume ids.</summary>
    private async Task Purge(HttpContext ctx, string? volume)
    {
        var purged = (VolumeList)await AskAsync(new PurgeTrash(volume), ChangeTimeout, StatusCodes.Status409Conflict, ctx.RequestAborted);
        await WriteJsonAsync(ctx, StatusCodes.Status200OK, purged.Volumes.Select(v => v.Id).ToArray(), typeof(string[]));
    }

    private static string? Query(HttpContext ctx, string key) => ctx.Request.Query[key].FirstOrDefault() is { Length: > 0 } v ? v : null;

    private static bool Flag(HttpContext ctx, string key) => ctx.Request.Query[key].FirstOrDefault() is "1" or "true" or "yes" or "on";
}
