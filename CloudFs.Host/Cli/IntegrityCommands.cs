// `cloudfs scrub [VOLUME]` and `cloudfs verify VOLUME [--deep]`: the node's management API (the management actor) asks the hosts; these print what
// they found (text or --json) and exit non-zero when damage remains or the replicas differ.
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class IntegrityCommands
{
    public static IEnumerable<Command> Create(CliIo io)
    {
        yield return Scrub(io);
        yield return Verify(io);
    }

    private static Command Scrub(CliIo io)
    {
        var volume = new Argument<string?>("VOLUME")
        {
            Description = "Only this volume's blocks (an id or a name), on each of its replica hosts (default: every live block of every host)",
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = r => r.Tokens.Count == 0 ? null : CliOptions.Volume(r),
        };
        var json = new Option<bool>("--json") { Description = "Print a JSON object (hosts, ranges, clean)" };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("scrub",
            "Read and verify every stored block (of VOLUME, or of every volume) on every host holding it, repair from another replica where one " +
            "holds the same version, and print one line per bad range: volume, host, offset, length, repaired|damaged, reason. " +
            "Exits 1 when damage remains.")
        {
            volume, json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var report = await client.PostAsync<ScrubReport>(parse.GetValue(volume) is { } one ? $"scrub?volume={Uri.EscapeDataString(one)}" : "scrub", null, ct);
            if (parse.GetValue(json)) await io.Out.WriteLineAsync(ScrubJson(report));
            else
            {
                foreach (var line in ScrubLines(report)) await io.Out.WriteLineAsync(line);
                if (report.RangesLeftOut > 0) await io.Err.WriteLineAsync($"{report.RangesLeftOut} more bad range(s) not listed (each host lists at most 10,000)");
                foreach (var h in report.Hosts)
                    await io.Err.WriteLineAsync(h.Error is { } error
                        ? $"host {h.HostId}: not scrubbed: {error}"
                        : $"host {h.HostId}: {h.BytesVerified} bytes verified in {h.Seconds.ToString("0.0", CultureInfo.InvariantCulture)} s, {h.BadBlocks} bad block(s)");
            }
            return report.Clean ? 0 : 1;
        });
        return command;
    }

    internal static IEnumerable<string> ScrubLines(ScrubReport report) =>
        report.Ranges.Select(r => string.Join(' ', r.Volume, r.HostId, N(r.Offset), N(r.Length), r.Status, r.Reason));

    internal static string ScrubJson(ScrubReport report) => Json(json =>
    {
        json.WriteStartObject();
        json.WriteStartArray("hosts");
        foreach (var h in report.Hosts)
        {
            json.WriteStartObject();
            json.WriteString("host", h.HostId);
            json.WriteNumber("bytes_verified", h.BytesVerified);
            json.WriteNumber("bad_blocks", h.BadBlocks);
            json.WriteNumber("seconds", Math.Round(h.Seconds, 3));
            if (h.Error is null) json.WriteNull("error"); else json.WriteString("error", h.Error);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("ranges");
        foreach (var r in report.Ranges)
        {
            json.WriteStartObject();
            json.WriteString("volume", r.Volume);
            json.WriteString("host", r.HostId);
            json.WriteNumber("offset", r.Offset);
            json.WriteNumber("length", r.Length);
            json.WriteString("status", r.Status);
            json.WriteString("reason", r.Reason);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteNumber("ranges_left_out", report.RangesLeftOut);
        json.WriteBoolean("clean", report.Clean);
        json.WriteEndObject();
    });

    private static Command Verify(CliIo io)
    {
        var volume = new Argument<string>("VOLUME") { Description = "The volume (an id or a name)", CustomParser = r => CliOptions.Volume(r) };
        var deep = new Option<bool>("--deep") { Description = "Also compare a digest of every live block across the replicas, at one version, and name the ranges that differ" };
        var json = new Option<bool>("--json") { Description = "Print a JSON object (replicas, and with --deep the ranges that differ)" };
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("verify",
            "Compare the replicas of VOLUME: one line per replica host (host, lsn, version, status: equal, behind or ahead by N entries, diverged, " +
            "missing, unreachable). --deep: one line per range whose content differs (offset, length, hosts, why). Exits 1 unless all are equal.")
        {
            volume, deep, json, contact, tls,
        };
        command.SetAction(async (parse, ct) =>
        {
            var isDeep = parse.GetValue(deep);
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var report = await client.PostAsync<VerifyReport>($"volumes/{Uri.EscapeDataString(parse.GetValue(volume)!)}/verify{(isDeep ? "?deep=1" : "")}", null, ct);
            if (parse.GetValue(json)) await io.Out.WriteLineAsync(VerifyJson(report));
            else
            {
                foreach (var line in VerifyLines(report)) await io.Out.WriteLineAsync(line);
                if (report.Deep) await io.Err.WriteLineAsync(DeepSummary(report));
            }
            return report.Equal ? 0 : 1;
        });
        return command;
    }

    internal static IEnumerable<string> VerifyLines(VerifyReport report)
    {
        foreach (var r in report.Replicas) yield return string.Join(' ', r.HostId, N(r.Lsn), r.Version, r.Status);
        foreach (var d in report.Differences) yield return string.Join(' ', N(d.Offset), N(d.Length), string.Join(',', d.Hosts), d.Why);
    }

    private static string DeepSummary(VerifyReport report) =>
        report.Note is { } note ? $"not compared: {note}"
        : report.Differences.Length == 0 ? $"{report.Ranges} range(s) of {report.RangeBytes} bytes compared at lsn {report.Lsn} ({report.Version}): all alike"
        : $"{report.Ranges} range(s) of {report.RangeBytes} bytes compared at lsn {report.Lsn} ({report.Version}): {report.Differences.Length} differ";

    internal static string VerifyJson(VerifyReport report) => Json(json =>
    {
        json.WriteStartObject();
        json.WriteString("volume", report.Volume);
        json.WriteStartArray("replicas");
        foreach (var r in report.Replicas)
        {
            json.WriteStartObject();
            json.WriteString("host", r.HostId);
            json.WriteNumber("lsn", r.Lsn);
            json.WriteString("version", r.Version);
            json.WriteString("status", r.Status);
            json.WriteBoolean("equal", r.Equal);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteBoolean("deep", report.Deep);
        if (report.Deep)
        {
            json.WriteNumber("lsn", report.Lsn);
            if (report.Version is null) json.WriteNull("version"); else json.WriteString("version", report.Version);
            json.WriteNumber("range_bytes", report.RangeBytes);
            json.WriteNumber("ranges", report.Ranges);
            json.WriteStartArray("differences");
            foreach (var d in report.Differences)
            {
                json.WriteStartObject();
                json.WriteNumber("offset", d.Offset);
                json.WriteNumber("length", d.Length);
                json.WriteStartArray("hosts");
                foreach (var h in d.Hosts) json.WriteStringValue(h);
                json.WriteEndArray();
                json.WriteString("why", d.Why);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            if (report.Note is null) json.WriteNull("note"); else json.WriteString("note", report.Note);
        }
        json.WriteBoolean("equal", report.Equal);
        json.WriteEndObject();
    });

    private static string N(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true })) write(json);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
