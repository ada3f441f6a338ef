// Akka's snapshot-store TCK cases that apply: the snapshot is the engine's head, selected by the criteria.
using Akka.Persistence;
using CloudFs.Actors.Volumes;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class LogSnapshotStoreTests() : StoreTestKit("log-snapshot-store-tests")
{
    private SelectedSnapshot? Load(string pid, SnapshotSelectionCriteria criteria)
    {
        Persistence.Instance.Apply(Sys).SnapshotStoreFor(null).Tell(new LoadSnapshot(pid, criteria, long.MaxValue), TestActor);
        return ExpectMsg<LoadSnapshotResult>().Snapshot;
    }

    [Fact]
    public async Task The_latest_snapshot_is_the_volume_head()
    {
        var info = await CreateVolumeAsync();
        await Store.WriteAsync(info.BaseId, 0, Pattern(4096, 1));
        await Store.WriteAsync(info.BaseId, 8192, Pattern(4096, 2));
        var snapshot = Load(info.BaseId.ToString(), SnapshotSelectionCriteria.Latest);
        Assert.NotNull(snapshot);
        Assert.Equal(3, snapshot!.Metadata.SequenceNr);
        var head = Assert.IsType<VolumeHead>(snapshot.Snapshot).Info;
        Assert.Equal(Store.GetVolume(info.BaseId)!.CurrentVersion, head.CurrentVersion);
        Assert.Equal(info.SizeBytes, head.SizeBytes);
    }

    [Fact]
    public async Task Criteria_that_exclude_the_head_select_nothing()
    {
        var info = await CreateVolumeAsync();
        await Store.WriteAsync(info.BaseId, 0, Pattern(512, 1));
        Assert.Null(Load(info.BaseId.ToString(), new SnapshotSelectionCriteria(1)));
        Assert.Null(Load(info.BaseId.ToString(), SnapshotSelectionCriteria.None));
        Assert.Null(Load(info.BaseId.ToString(), new SnapshotSelectionCriteria(long.MaxValue, DateTime.UtcNow.AddDays(-1))));
        Assert.NotNull(Load(info.BaseId.ToString(), new SnapshotSelectionCriteria(2)));
    }

    [Fact]
    public void Unknown_or_malformed_persistence_ids_have_no_snapshot()
    {
        Assert.Null(Load(Id160.Random().ToString(), SnapshotSelectionCriteria.Latest));
        Assert.Null(Load("not-a-volume", SnapshotSelectionCriteria.Latest));
    }
}
