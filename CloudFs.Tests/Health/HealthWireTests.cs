// Health on the wire: the followers' states and the lag questions between hosts (Hyperion adapter), a volume's health
// and replica lag between nodes and in the management API's JSON (`ls --json`, /status), and `cloudfs status`'s lines.
using Akka.Configuration;
using CloudFs.Actors.Management;
using CloudFs.Actors.Node;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;
using System.Text.Json;

namespace CloudFs.Tests.Health;

public sealed class HealthWireTests : Akka.TestKit.Xunit2.TestKit
{
    public HealthWireTests() : base(ConfigurationFactory.ParseString("akka.actor.provider = local").WithFallback(CloudFsConfig.Default()), "health-wire-tests") { }

    private T RoundTrip<T>(T message) where T : notnull
    {
        var serializer = Sys.Serialization.FindSerializerFor(message);
        Assert.IsType<ControlMessageSerializer>(serializer);
        var bytes = serializer.ToBinary(message);
        return Assert.IsType<T>(Sys.Serialization.Deserialize(bytes, serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, message)));
    }

    private static readonly ReplicaLag[] Lags = [new("p", ReplicaLag.Primary, 0, 0), new("a", ReplicaLag.Away, 12, 55296), new("b", ReplicaLag.Resyncing, null, null)];

    private static VolumeSummary Summary(string health, int? percent = null) => new(Id160.Random().ToString(), 1 << 30, VolumeMode.Sync, "p", ["p", "a", "b"],
        Id160.Random().ToString(), "db", health, null, 0, Lags, 1, percent);

    [Fact]
    public void Follower_states_and_lag_questions_round_trip_between_hosts()
    {
        var sync = new ReplicaSync("v", ReplicaSync.Resyncing, 4096, 0, null);
        var reports = RoundTrip(new VolumeReports("h", [], [sync, new ReplicaSync("w", ReplicaSync.Retrying, Reason: "no primary is known")]));
        Assert.Equal(sync, reports.Syncs![0]);
        Assert.Equal("no primary is known", reports.Syncs[1].Reason);
        var ask = RoundTrip(new MeasureLags(["v", "w"], [3, 0]));
        Assert.Equal(["v", "w"], ask.Volumes);
        Assert.Equal([3L, 0L], ask.AfterLsns);
        Assert.Equal(new long[] { 4608, -1 }, RoundTrip(new LagsMeasured([4608, -1])).Bytes);
    }

    [Fact]
    public void A_volume_summary_carries_its_replicas_lag_between_nodes()
    {
        var summary = Summary(VolumeHealth.Resyncing, 40);
        // As placement builds it (lists, not arrays): the serializer sends only known types.
        var back = RoundTrip(new VolumePage(new List<VolumeSummary> { summary with { Lag = summary.Lag!.ToList() } }, null, []));
        var v = Assert.Single(back.Volumes);
        Assert.Equal(Lags, v.Lag);
        Assert.Equal((1, (int?)40), (v.CurrentReplicas, v.ResyncPercent));
    }

    [Fact]
    public void Ls_json_has_the_health_detail_and_each_replicas_lag_entries_and_bytes_and_reads_back()
    {
        var summary = Summary(VolumeHealth.Degraded);
        var json = JsonSerializer.Serialize(summary, ManagementJson.Options);
        using var doc = JsonDocument.Parse(json);
        var o = doc.RootElement;
        Assert.Equal("degraded", o.GetProperty("health").GetString());
        Assert.Equal("degraded (1 of 3 current)", o.GetProperty("health_detail").GetString());
        var away = o.GetProperty("lag")[1];
        Assert.Equal(("a", "away", 12L, 55296L), (away.GetProperty("host").GetString(), away.GetProperty("state").GetString(),
            away.GetProperty("lag_entries").GetInt64(), away.GetProperty("lag_bytes").GetInt64()));
        Assert.Equal(JsonValueKind.Null, o.GetProperty("lag")[2].GetProperty("lag_bytes").ValueKind);
        var back = JsonSerializer.Deserialize<VolumeSummary>(json, ManagementJson.Options)!;
        Assert.Equal(Lags, back.Lag);
        Assert.Equal(summary with { Lag = back.Lag, Replicas = back.Replicas }, back);
    }

    [Fact]
    public async Task Ls_reads_the_streamed_array_with_the_fields_it_does_not_need_back()
    {
        // `ls` reads the node's indented array as it streams in, objects with health_detail (which it skips) and lag.
        var volumes = Enumerable.Range(0, 300).Select(_ => Summary(VolumeHealth.Degraded)).ToArray();
        var json = JsonSerializer.SerializeToUtf8Bytes(volumes, new JsonSerializerOptions(ManagementJson.Options) { WriteIndented = true });
        var read = new List<VolumeSummary>();
        await foreach (var v in JsonSerializer.DeserializeAsyncEnumerable<VolumeSummary>(new MemoryStream(json), ManagementJson.Options)) read.Add(v!);
        Assert.Equal(volumes.Select(v => v.Id), read.Select(v => v.Id));
        Assert.All(read, v => Assert.Equal(Lags, v.Lag));
    }

    [Fact]
    public void Status_prints_each_unhealthy_volumes_health_with_its_detail_and_a_line_per_replica()
    {
        var v = Summary(VolumeHealth.Degraded);
        var members = new ClusterMembers([new MemberLine("akka.tcp://cloudfs@127.0.0.1:4053", ["cloudfs"], "Up", "Reachable", "p")], null, "x");
        var lines = StatusCommand.Lines(new StatusCommand.ClusterStatus(members, [v], [])).ToArray();
        Assert.Contains("volumes: 1 not healthy", lines);
        Assert.Contains("    health: degraded (1 of 3 current)", lines);
        Assert.Contains("    replica a: away, lag 12 entries, 55296 bytes", lines);
        Assert.Contains("    replica b: resyncing, lag ? entries, ? bytes", lines);
    }
}
