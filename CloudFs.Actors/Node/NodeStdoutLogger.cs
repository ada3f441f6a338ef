// Akka's minimal (standard-out) logger for a node, in the node's format on stderr (akka.stdout-logger-class): it
// prints what Akka logs before NodeLogger starts and after it stopped, and the events still queued for NodeLogger
// when it stops, which Akka's logger mailbox hands to this logger unfiltered (Akka's own would print the
// framework's INFO "Remoting shut down." as "[INFO][12/05/2026 ...]" at every stop). NodeLogger's rule holds here:
// the framework's events below WARNING are not printed (so at --log-level debug, those still queued at the stop are
// lost); CloudFS's own are published only from cloudfs.log-level up (akka.loglevel follows it). No stack traces.
using Akka.Event;

namespace CloudFs.Actors.Node;

public sealed class NodeStdoutLogger : MinimalLogger
{
    protected override void Log(object message)
    {
        if (message is not LogEvent e)
        {
            Console.Error.WriteLine(message);
            return;
        }
        var severity = NodeLogger.Severity(e);
        if (!NodeLogger.Own(e) && severity < LogLevel.WarningLevel) return;
        if (!Filter.ShouldTryKeepMessage(e, out _)) return;
        Console.Error.WriteLine(NodeLogger.Line(e, severity, stackTrace: false));
    }
}
