// The HTTP client commands: heads, stream VERSION (binary to stdout) and apply (stdin to POST /log); --tls for HTTPS.
using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class StreamCommands
{
    public static IEnumerable<Command> Create(CliIo io)
    {
        yield return Heads(io);
        yield return Stream(io);
        yield return Apply(io);
    }

    /// <summary>A non-2xx answer: the server's one-line reason becomes the CLI's error.</summary>
    private static async Task EnsureSuccess(HttpResponseMessage response, string what, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        var body = (await response.Content.ReadAsStringAsync(ct)).Trim();
        var reason = body.Length > 0 ? body.Split('\n')[0] : response.ReasonPhrase ?? "";
        throw new CliException($"{what} failed: HTTP {(int)response.StatusCode} {reason}");
    }

    private static Command Heads(CliIo io)
    {
        var http = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var json = VolumeCommands.Json("Print a JSON array of objects (volume, version)");
        var command = new Command("heads", "Print <base id>:<current version id> for every volume the node holds (GET /heads).") { json, http, tls };
        command.SetAction(async (parse, ct) =>
        {
            using var client = HttpCliClient.Create(parse.GetValue(http)![0], parse.GetValue(tls), streaming: false);
            using var response = await client.Client.GetAsync(client.For("heads"), ct);
            await EnsureSuccess(response, "GET /heads", ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            if (!parse.GetValue(json)) { await io.Out.WriteAsync(text); return 0; }
            var heads = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')).Select(p => new { Volume = p[0], Version = p[^1] });
            await io.Out.WriteLineAsync(System.Text.Json.JsonSerializer.Serialize(heads, ManagementJson.Options));
            return 0;
        });
        return command;
    }

    private static Command Stream(CliIo io)
    {
        var version = new Argument<Id160>("VERSION")
        {
            Description = "Stream the entries after this version (a volume's base id streams everything)",
            CustomParser = r => CliOptions.Id(r, "version id"),
        };
        var follow = new Option<bool>("--follow") { Description = "Keep streaming new entries as they are written, until interrupted" };
        var http = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("stream", "Write the binary stream of a volume's entries after VERSION to stdout (GET /stream). On a terminal, stderr shows the bytes and rate.") { version, follow, http, tls };
        command.SetAction(async (parse, ct) =>
        {
            var query = parse.GetValue(version).ToString() + (parse.GetValue(follow) ? "&follow=1" : "");
            using var client = HttpCliClient.Create(parse.GetValue(http)![0], parse.GetValue(tls), streaming: true);
            using var response = await client.Client.GetAsync(client.For("stream?" + query), HttpCompletionOption.ResponseHeadersRead, ct);
            await EnsureSuccess(response, "GET /stream", ct);
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            var progress = TransferProgress.For(io, "streamed", response.Content.Headers.ContentLength);
            await using var stdout = progress is null ? io.OpenStdout() : new CountingStream(io.OpenStdout(), progress);
            try
            {
                await body.CopyToAsync(stdout, 1 << 20, ct);
            }
            catch (OperationCanceledException) when (parse.GetValue(follow))
            {
                // Interrupting --follow is the normal way to end it.
            }
            await stdout.FlushAsync(CancellationToken.None);
            progress?.Finish();
            return 0;
        });
        return command;
    }

    private static Command Apply(CliIo io)
    {
        var http = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var import = new Option<bool>("--import") { Description = "The stream may create a volume the node does not hold (a copy taken in from elsewhere); without it, such a stream is refused" };
        var json = VolumeCommands.Json("Print {\"applied\", \"volume\", \"version\"}: the entries applied and the volume's head after them");
        var command = new Command("apply", "Read a stream (from `cloudfs stream` or GET /stream) on stdin and apply it to the node (POST /log). On a terminal, stderr shows the bytes sent, the rate and, from a file, the time left.") { http, tls, import, json };
        command.SetAction(async (parse, ct) =>
        {
            using var client = HttpCliClient.Create(parse.GetValue(http)![0], parse.GetValue(tls), streaming: true);
            var progress = TransferProgress.For(io, "applied", io.InputLength);
            await using var stdin = progress is null ? io.OpenStdin() : new CountingStream(io.OpenStdin(), progress);
            using var content = new LiveStreamContent(stdin);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var request = new HttpRequestMessage(HttpMethod.Post, client.For(parse.GetValue(import) ? "log?import=1" : "log")) { Content = content };
            if (parse.GetValue(json)) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            using var response = await client.Client.SendAsync(request, ct);
            progress?.Finish();
            await EnsureSuccess(response, "POST /log", ct);
            await io.Out.WriteAsync(await response.Content.ReadAsStringAsync(ct));
            return 0;
        });
        return command;
    }
}
