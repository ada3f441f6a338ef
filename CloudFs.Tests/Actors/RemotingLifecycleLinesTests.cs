// Akka's lines about a peer's connection coming and going (closed, not listening yet, a join retried) are debug lines
// of the node's log; its other association failures keep their level. The exceptions are Akka.Remote's own types, made by reflection, so a rename in Akka fails here.
using Akka.Event;
using CloudFs.Actors.Node;

namespace CloudFs.Tests.Actors;

public class RemotingLifecycleLinesTests
{
    private const string Gated = "Association with remote system {0} has failed; address is now gated for {1} ms. Reason is: [{2}]";
    private const string Source = "akka://cloudfs/system/endpointManager/reliableEndpointWriter-akka.tcp%3A%2F%2Fcloudfs%40127.0.0.2%3A4053-1";

    private static Exception Remoting(string type, params object[] args) =>
        (Exception)Activator.CreateInstance(typeof(Akka.Remote.RemoteActorRefProvider).Assembly.GetType("Akka.Remote." + type, throwOnError: true)!,
            System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic,
            null, args, null)!;

    private static Warning GatedWarning(Exception reason) =>
        new(Source, typeof(object), string.Format(Gated, "akka.tcp://cloudfs@127.0.0.2:4053", 5000, reason));

    [Fact]
    public void A_peer_that_closed_its_connection_is_a_debug_line()
    {
        var closed = Remoting("EndpointDisassociatedException", "Disassociated");
        Assert.True(RemotingLifecycleLines.Is(GatedWarning(closed)));
        Assert.True(RemotingLifecycleLines.Is(new Error(closed, "akka://cloudfs/system/endpointManager/reliableEndpointWriter-x/endpointWriter",
            typeof(object), "Disassociated")));
    }

    [Fact]
    public void A_peer_not_listening_yet_and_the_join_that_retries_are_debug_lines()
    {
        Assert.True(RemotingLifecycleLines.Is(new Warning("akka://cloudfs/system/endpointManager", typeof(object),
            "Tried to associate with unreachable remote address [akka.tcp://cloudfs@127.0.45.1:4053]. Address is now gated for 5000 ms, " +
            "all messages to this address will be delivered to dead letters. Reason: [Connection refused tcp://cloudfs@127.0.45.1:4053] ")));
        Assert.True(RemotingLifecycleLines.Is(new Warning("akka://cloudfs/system/cluster/core/daemon/joinSeedNodeProcess-1", typeof(object),
            "Couldn't join seed nodes after [2] attempts, will try again. seed-nodes=[akka.tcp://cloudfs@127.0.45.1:4053]")));
    }

    [Fact]
    public void Other_association_failures_keep_their_level()
    {
        var unwritable = Remoting("EndpointException", "Failed to write message [x] to the transport", new InvalidOperationException("boom"));
        Assert.False(RemotingLifecycleLines.Is(GatedWarning(unwritable)));
        Assert.False(RemotingLifecycleLines.Is(new Error(unwritable, "akka://cloudfs/system/endpointManager/endpointWriter", typeof(object), "x")));
        Assert.False(RemotingLifecycleLines.Is(new Warning("akka://cloudfs/user/placement", typeof(object), "EndpointDisassociatedException in a message")));
        Assert.False(RemotingLifecycleLines.Is(new Info(Source, typeof(object), "Disassociated")));
    }
}
