// Akka remoting's two lines for a peer that closed its connection without remoting's goodbye (its process exited, or
// its transport closed before its shutdown reached us, as when a whole cluster stops at once): the reliable delivery
// supervisor's "Association with remote system ... has failed; address is now gated" WARN and the endpoint writer's
// "Disassociated" ERROR, both carrying Akka's EndpointDisassociatedException. They are the same lifecycle event that
// akka.remote.log-remote-lifecycle-events already keeps at debug: a peer leaving is told by CloudFS's own membership
// and crash-detector lines. Other association failures (a message that cannot be written, a refused handshake, a
// quarantine) carry other exceptions and keep their level.
using Akka.Event;

namespace CloudFs.Actors.Node;

public static class PeerClosedAssociation
{
    // Akka.Remote's internal exception type, named rather than referenced.
    private const string DisassociatedException = "EndpointDisassociatedException";

    /// <summary>True for remoting's WARN or ERROR about a peer that closed its connection.</summary>
    public static bool Is(LogEvent e) => e switch
    {
        Error { Cause: { } cause } => cause.GetType().Name == DisassociatedException,
        Warning w => w.LogSource.Contains("reliableEndpointWriter", StringComparison.Ordinal) &&
                     (w.Message?.ToString() ?? "").Contains(DisassociatedException, StringComparison.Ordinal),
        _ => false,
    };
}
