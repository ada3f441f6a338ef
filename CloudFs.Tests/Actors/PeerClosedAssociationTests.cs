// Remoting's lines about a peer that closed its connection are debug lines of the node's log; its other association
// failures keep their level. The exceptions are Akka.Remote's own types, made by reflection, so a rename in Akka fails here.
using Akka.Event;
using CloudFs.Actors.Node;

namespace CloudFs.Tests.Actors;

public class PeerClosedAssociationTests
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
        Assert.True(PeerClosedAssociation.Is(GatedWarning(closed)));
        Assert.True(PeerClosedAssociation.Is(new Error(closed, "akka://cloudfs/system/endpointManager/reliableEndpointWriter-x/endpointWriter",
            typeof(object), "Disassociated")));
    }

    [Fact]
    public void Other_association_failures_keep_their_level()
    {
        var unwritable = Remoting("EndpointException", "Failed to write message [x] to the transport", new InvalidOperationException("boom"));
        Assert.False(PeerClosedAssociation.Is(GatedWarning(unwritable)));
        Assert.False(PeerClosedAssociation.Is(new Error(unwritable, "akka://cloudfs/system/endpointManager/endpointWriter", typeof(object), "x")));
        Assert.False(PeerClosedAssociation.Is(new Warning("akka://cloudfs/user/placement", typeof(object), "EndpointDisassociatedException in a message")));
        Assert.False(PeerClosedAssociation.Is(new Info(Source, typeof(object), "Disassociated")));
    }
}
