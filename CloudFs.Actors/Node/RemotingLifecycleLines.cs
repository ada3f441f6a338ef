// Akka's lines about a peer's connection coming and going, which the node prints at debug: they are the lifecycle
// events akka.remote.log-remote-lifecycle-events already keeps at debug, under other names, and CloudFS says what they
// mean in its own lines (membership, the crash detector, "joining ... no seed has let this node in yet").
// - A peer that closed its connection without remoting's goodbye (its process exited, or its transport closed before
//   its shutdown reached us, as when a whole cluster stops at once): the reliable delivery supervisor's "Association
//   with remote system ... has failed; address is now gated" WARN and the endpoint writer's "Disassociated" ERROR, both
//   carrying Akka's EndpointDisassociatedException.
// - A peer not listening (a seed that has not started yet, a peer that exited): "Tried to associate with unreachable
//   remote address".
// - The join retrying while no seed answers: "Couldn't join seed nodes after [N] attempts, will try again".
// Other association failures (a message that cannot be written, a refused handshake, a quarantine) keep their level.
using Akka.Event;

namespace CloudFs.Actors.Node;

public static class RemotingLifecycleLines
{
    // Akka.Remote's internal exception type, named rather than referenced.
    private const string DisassociatedException = "EndpointDisassociatedException";

    /// <summary>True for one of Akka's WARN or ERROR lines about a peer's connection coming or going.</summary>
    public static bool Is(LogEvent e) => e switch
    {
        Error { Cause: { } cause } => cause.GetType().Name == DisassociatedException,
        Warning w => Text(w) is var text &&
                     ((w.LogSource.Contains("reliableEndpointWriter", StringComparison.Ordinal) && text.Contains(DisassociatedException, StringComparison.Ordinal)) ||
                      text.StartsWith("Tried to associate with unreachable remote address", StringComparison.Ordinal) ||
                      text.StartsWith("Couldn't join seed nodes after", StringComparison.Ordinal)),
        _ => false,
    };

    private static string Text(LogEvent e) => e.Message?.ToString() ?? "";
}
