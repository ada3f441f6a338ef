// Start-up order: the journal stashes until the block-device actor has opened the store; the block-device actor
// publishes the store, reports an open failure, and releases the device (with a checkpoint) when it stops.
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using CloudFs.Actors.Devices;
using CloudFs.Actors.Node;
using CloudFs.Actors.Persistence;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class StorageStartupTests() : Akka.TestKit.Xunit2.TestKit(
    ConfigurationFactory.ParseString("akka.actor.provider = local").WithFallback(CloudFsConfig.Default()), "storage-startup-tests"), IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudfs-startup-").FullName;

    private BlockDeviceActor.Settings Settings => new(StoreTestKit.StoreOptions(_dir), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200));

    [Fact]
    public async Task The_journal_answers_requests_sent_before_the_store_was_open()
    {
        var journal = Persistence.Instance.Apply(Sys).JournalFor(null);
        var volume = Id160.Random().ToString();
        journal.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, volume, TestActor));
        ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // stashed: no store yet

        var device = Sys.ActorOf(BlockDeviceActor.Props(Settings));
        var store = await CloudFsStorage.Get(Sys).StoreAsync.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, ExpectMsg<RecoverySuccess>().HighestSequenceNr);

        device.Tell(BlockDeviceActor.GetStore.Instance);
        Assert.Same(store, ExpectMsg<BlockDeviceActor.StoreOpened>().Store);

        var info = await store.CreateVolumeAsync(1 << 20, VolumeMode.Async, [store.HostId]);
        await store.WriteAsync(info.BaseId, 0, new byte[4096]);
        Watch(device);
        Sys.Stop(device);
        ExpectTerminated(device);
        // Released: the device opens again, with the volume and its head.
        using var reopened = LogStore.Open(StoreTestKit.StoreOptions(_dir));
        Assert.Equal(2, reopened.GetVolume(info.BaseId)!.Lsn);
    }

    [Fact]
    public async Task A_device_that_cannot_be_opened_is_reported_to_the_node_and_the_journal()
    {
        using var holder = LogStore.Open(StoreTestKit.StoreOptions(_dir)); // pinned by someone else
        var device = Sys.ActorOf(BlockDeviceActor.Props(Settings));
        await Assert.ThrowsAsync<DeviceException>(() => CloudFsStorage.Get(Sys).StoreAsync.WaitAsync(TimeSpan.FromSeconds(10)));
        device.Tell(BlockDeviceActor.GetStore.Instance);
        Assert.IsType<DeviceException>(ExpectMsg<Status.Failure>().Cause);
    }

    public new void Dispose()
    {
        base.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
