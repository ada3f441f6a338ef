// Placement asks a volume's primary for the bytes its lagging replicas miss, once per primary host and round, and only
// for replicas behind it (an away host from the head it last reported).
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Health;

public sealed class LagSurveyTests
{
    private static VolumeReport Copy(long lsn, bool writable, string[] replicas, long view = 0) =>
        new("v", 1 << 20, VolumeMode.Async, replicas, lsn, "x", writable, view, null);

    [Fact]
    public void Only_replicas_behind_the_primary_are_asked_about_an_away_host_from_its_last_known_head_one_without_a_copy_from_0()
    {
        string[] set = ["p", "a", "b", "c"];
        var copies = new Dictionary<string, VolumeReport> { ["p"] = Copy(10, true, set), ["a"] = Copy(10, false, set), ["c"] = Copy(3, false, set) };
        var behind = LagSurvey.Behind(set, "p", 0, copies, new Dictionary<string, long> { ["b"] = 7 });
        // a is at the head; b is away at 7; c is at 3.
        Assert.Equal([("b", 7L), ("c", 3L)], behind!.OrderBy(x => x.Host).ToArray());
        Assert.Equal([("b", 0L), ("c", 3L)], LagSurvey.Behind(set, "p", 0, copies, new Dictionary<string, long>())!.OrderBy(x => x.Host).ToArray());
    }

    [Fact]
    public void Nothing_is_asked_while_every_replica_is_at_its_primarys_head_or_without_a_writable_primary_of_the_view()
    {
        string[] set = ["p", "a"];
        var none = new Dictionary<string, long>();
        Assert.Null(LagSurvey.Behind(set, "p", 0, new Dictionary<string, VolumeReport> { ["p"] = Copy(10, true, set), ["a"] = Copy(10, false, set) }, none));
        var behind = new Dictionary<string, VolumeReport> { ["p"] = Copy(10, true, set), ["a"] = Copy(4, false, set) };
        Assert.Null(LagSurvey.Behind(set, "p", 1, behind, none));
        Assert.Null(LagSurvey.Behind(set, "a", 0, behind, none));
        Assert.Null(LagSurvey.Behind(["p"], "p", 0, behind, none));
    }
}
