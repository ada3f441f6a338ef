// The management actor on a node that is not (yet) an Up member: it counts no live host and refuses to create.
using CloudFs.Actors.Management;
using Akka.Actor;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class ManagementWithoutClusterTests() : StoreTestKit("management-without-cluster", UnjoinedCluster)
{
    [Fact]
    public void Create_fails_with_only_0_hosts_found_and_creates_nothing()
    {
        var management = Sys.ActorOf(ManagementActor.Props(Store, Store.HostId, TimeSpan.FromSeconds(1), CloudFsSettings.Default.Scrub.CommandTimeout));
        management.Tell(new CreateVolume(1, 1 << 20, VolumeMode.Async));
        Assert.Equal("only 0 host(s) found", ExpectMsg<CommandFailed>().Reason);
        Assert.Empty(Store.ListVolumes());
    }
}
