// Three in-process nodes whose failure detector would wait 60 s: a crashed member (its port closed) must still be
// removed, and the placement singleton it ran must move, before that detector could have acted: through the crash
// detector's quarantine and down. How long that takes is measured in bench/cluster_bench.py, not asserted here.
using Akka.Actor;
using CloudFs.Actors.Node;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Cluster;

[Collection(nameof(ClusterCollection))]
public sealed class CrashDetectionTests : IAsyncLifetime
{
    // Well inside the failure detector's 60 s pause: a member removed within this was removed by the crash detector.
    private static readonly TimeSpan WithoutFailureDetector = TimeSpan.FromSeconds(40);
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudfs-crash-").FullName;
    private readonly List<CloudFsNode?> _nodes = new();

    public async Task InitializeAsync()
    {
        // The failure detector cannot mark anyone unreachable within the test's bound, so only the crash detector can
        // get a dead member removed in time; a crashed node must not leave the cluster on its way out.
        var config = Path.Combine(_dir, "slow-failure-detector.conf");
        await File.WriteAllTextAsync(config, "akka.cluster.failure-detector.acceptable-heartbeat-pause = 60s\n" +
            "akka.coordinated-shutdown.run-by-actor-system-terminate = off\n");
        for (var i = 0; i < 3; i++)
        {
            int? seed = i == 0 ? null : _nodes[0]!.Options.AkkaPort;
            _nodes.Add(await CloudFsNode.StartAsync(new NodeOptions
            {
                DevicePath = Path.Combine(_dir, $"node{i}.log"),
                Size = 128 << 20,
                AkkaPort = 0,
                Listen = "127.0.0.1",
                Seeds = seed is { } p ? [$"127.0.0.1:{p}"] : [],
                ConfigFile = config,
            }).WaitAsync(TimeSpan.FromSeconds(60)));
        }
        await Eventually.Until(() => _nodes.All(n => Akka.Cluster.Cluster.Get(n!.System).State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) == 3),
            TimeSpan.FromSeconds(60), "3 Up members");
    }

    public async Task DisposeAsync()
    {
        foreach (var node in Enumerable.Reverse(_nodes).Where(n => n is not null))
        {
            try { await node!.System.Terminate().WaitAsync(TimeSpan.FromSeconds(30)); }
            catch (Exception) { /* best effort: the test already reported its own failure */ }
        }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static async Task<bool> RunsPlacement(CloudFsNode node)
    {
        try
        {
            await node.System.ActorSelection($"/user/{PlacementActor.Name}/singleton").ResolveOne(TimeSpan.FromMilliseconds(500));
            return true;
        }
        catch (ActorNotFoundException) { return false; }
    }

    [Fact]
    public async Task A_member_that_crashed_as_a_new_primary_asks_who_serves_an_attachment_counts_as_serving_none_once_downed()
    {
        // The question a new primary asks before it lets a fresh read-write attachment in (docs/ATTACH.md): a member
        // killed just before it cannot answer, but once the crash detector has downed it no client's write through it
        // can reach the writer: the answer must not wait out the question's whole timeout.
        var node2 = _nodes[2]!;
        _nodes[2] = null;
        await node2.System.Terminate().WaitAsync(TimeSpan.FromSeconds(30));

        var none = await ReadWriteAttachmentCensus.NoneAsync(_nodes[1]!.System, Id160.Random(), WithoutFailureDetector);
        Assert.True(none, "a downed member was taken to serve an attachment");
    }

    [Fact]
    public async Task A_crashed_oldest_member_is_removed_and_its_placement_singleton_moves_without_the_failure_detector()
    {
        // Node 0 formed the cluster: it is the oldest member and runs the placement singleton.
        await Eventually.Value(async () => await RunsPlacement(_nodes[0]!) ? "" : null, TimeSpan.FromSeconds(30), "the placement singleton on node 0");
        var dead = Akka.Cluster.Cluster.Get(_nodes[0]!.System).SelfUniqueAddress;
        var survivors = _nodes.Skip(1).Select(n => n!).ToArray();

        var node0 = _nodes[0]!;
        _nodes[0] = null;
        await node0.System.Terminate().WaitAsync(TimeSpan.FromSeconds(30));

        await Eventually.Until(() => survivors.All(s => Akka.Cluster.Cluster.Get(s.System).State.Members.All(m => m.UniqueAddress != dead)),
            WithoutFailureDetector, "the crashed member removed on both survivors");
        await Eventually.Value(async () => (await Task.WhenAll(survivors.Select(RunsPlacement))).Count(x => x) == 1 ? "" : null,
            WithoutFailureDetector, "the placement singleton running on exactly one survivor");
    }
}
