// rm, restore, resize, scrub and verify find their volume by placement's one lookup (LocateVolume, O(1)), not by
// listing every volume of the cluster: at 100,000 volumes a listing is a hundred messages per command.
using Akka.Actor;
using Akka.TestKit;
using CloudFs.Actors.Management;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class ManagementLookupTests() : StoreTestKit("management-lookup", UnjoinedCluster)
{
    public static TheoryData<IManagementMessage> Commands => new()
    {
        new RemoveVolume("web-disk", Force: true),
        new RestoreVolume("web-disk"),
        new ResizeVolume("web-disk", 1 << 30, AllowShrink: false),
        new ScrubVolumes("web-disk"),
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_command_on_one_volume_asks_placement_for_that_volume_only(IManagementMessage command)
    {
        var placement = CreateTestProbe();
        var management = Sys.ActorOf(ManagementActor.Props(Store, Store.HostId, TimeSpan.FromSeconds(3), CloudFsSettings.Default.Scrub.CommandTimeout, placement.Ref));
        management.Tell(command);
        var asked = placement.ExpectMsg<object>(TimeSpan.FromSeconds(5));
        Assert.Equal(new LocateVolume("web-disk"), Assert.IsType<LocateVolume>(asked));
        placement.Reply(new VolumeLocation(null, null));
        // Placement does not know it and neither does this node: named as missing, and nothing else was asked.
        var answer = ExpectMsg<IManagementMessage>(TimeSpan.FromSeconds(5));
        Assert.Contains("no volume named 'web-disk'", answer is CommandFailed f ? f.Reason : answer.ToString());
        placement.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }
}
