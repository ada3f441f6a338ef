// `cloudfs status`, like `ceph status` or `drbdadm status`: the members, the hosts whose log device failed, and every
// volume that is not healthy (GET /status); plain lines, or the node's JSON with --json.
using System.CommandLine;
using System.Text.Json;
using CloudFs.Actors.Management;

namespace CloudFs.Host.Cli;

internal static class StatusCommand
{
    /// <summary>The body of GET /status.</summary>
    internal sealed record ClusterStatus(ClusterMembers Cluster, IReadOnlyList<VolumeSummary> Volumes, IReadOnlyList<HostFailure> FailedHosts);

    public static Command Create(CliIo io)
    {
        var json = VolumeCommands.Json("Print a JSON object: cluster (members, leader, self_address), volumes (the `ls --json` objects of those not healthy), failed_hosts");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("status", "Cluster health: the members, hosts whose log device failed, and every volume that is not healthy.") { json, contact, tls };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            using var response = await client.SendAsync(System.Net.Http.HttpMethod.Get, "status", null, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            if (parse.GetValue(json)) { await io.Out.WriteAsync(body); return 0; }
            var status = JsonSerializer.Deserialize<ClusterStatus>(body, ManagementJson.Options) ?? throw new CliException("the node answered /status with an empty body");
            foreach (var line in Lines(status)) await io.Out.WriteLineAsync(line);
            return 0;
        });
        return command;
    }

    /// <summary>A summary line for the members, the `cluster show` lines, the failed devices, a summary line for the
    /// volumes and, for each one that is not healthy, its `ls` line, its health with the detail, and a line per replica
    /// (state and lag).</summary>
    internal static IEnumerable<string> Lines(ClusterStatus status)
    {
        var members = status.Cluster.Members;
        var up = members.Count(m => m.Status == "Up");
        var unreachable = members.Count(m => m.Reachability != "Reachable");
        yield return $"members: {members.Count} ({up} up, {unreachable} unreachable), leader {status.Cluster.Leader ?? "none"}";
        foreach (var line in ClusterCommands.ShowLines(status.Cluster).SkipLast(1)) yield return "  " + line;
        foreach (var f in status.FailedHosts) yield return $"  host {f.HostId} ({f.Address}): log device failed: {f.Reason}";
        yield return status.Volumes.Count == 0 ? "volumes: all healthy" : $"volumes: {status.Volumes.Count} not healthy";
        foreach (var v in status.Volumes)
        {
            yield return "  " + VolumeListFormat.Line(v);
            yield return "    health: " + VolumeHealth.Describe(v);
            foreach (var r in v.Lag ?? [])
                yield return $"    replica {r.Host}: {r.State}, lag {Count(r.LagEntries)} entries, {Count(r.LagBytes)} bytes";
        }
    }

    private static string Count(long? n) => n?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?";
}
