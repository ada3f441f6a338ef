// Placement asks a volume's primary for the bytes its lagging replicas miss, once per primary host and round, and only
// for replicas behind it (an away host from the head it last reported).
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Health;

public sealed class LagSurveyTests
{
    private static VolumeReport Copy(string id, long lsn, bool writable, string[] replicas, long view = 0) =>
        new(id, 1 << 20, VolumeMode.Async, replicas, lsn, "x", writable, view, null);

    [Fact]
    public void Only_replicas_behind_the_primary_are_asked_about_in_one_question_per_primary()
    {
        string[] set = ["p", "a", "b"];
        var reports = new List<(string, VolumeReports)>
        {
            ("addr-p", new VolumeReports("p", [Copy("v1", 10, true, set), Copy("v2", 5, true, set)])),
            ("addr-a", new VolumeReports("a", [Copy("v1", 10, false, set), Copy("v2", 3, false, set)])),
        };
        var plan = LagSurvey.Plan(reports, new Dictionary<(string, string), long> { [("v1", "b")] = 7 });
        var queries = Assert.Single(plan).Value.OrderBy(q => q.Volume).ThenBy(q => q.Host).ToArray();
        Assert.Equal("addr-p", Assert.Single(plan).Key);
        // v1: a is at the head; b is away at 7. v2: a is at 3; b never reported (no copy: from 0).
        Assert.Equal([new LagSurvey.Query("v1", "b", 7), new LagSurvey.Query("v2", "a", 3), new LagSurvey.Query("v2", "b", 0)], queries);
    }

    [Fact]
    public void Nothing_is_asked_while_every_replica_is_at_its_primarys_head()
    {
        string[] set = ["p", "a"];
        var reports = new List<(string, VolumeReports)>
        {
            ("addr-p", new VolumeReports("p", [Copy("v", 10, true, set)])),
            ("addr-a", new VolumeReports("a", [Copy("v", 10, false, set)])),
        };
        Assert.Empty(LagSurvey.Plan(reports, new Dictionary<(string, string), long>()));
    }
}
