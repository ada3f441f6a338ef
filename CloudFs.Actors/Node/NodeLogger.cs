// The node's log lines on stderr: "2026-12-04T00:24:58.587Z INFO  [source] message", UTC, ISO 8601. CloudFS's own
// events from cloudfs.log-level up; the framework's (Akka's remoting, cluster, sharding) from WARNING up unless the
// level is debug, so an operator reads what the node did, not how Akka did it. A cause's stack trace only at debug.
// Remoting's lines about a peer's connection coming and going count as debug (RemotingLifecycleLines).
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace CloudFs.Actors.Node;

public sealed class NodeLogger : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    private readonly LogLevel _own;
    private readonly LogLevel _framework;
    private readonly TextWriter _out = Console.Error;
    // The system's log filters (LogFilterSetup, e.g. RemotingTlsLogFilter): a logger applies them itself.
    private readonly LogFilterEvaluator _filter = Context.System.Settings.LogFilter;

    public NodeLogger()
    {
        _own = Settings.NodeSettings.LogLevelOf(Context.System.Settings.Config);
        _framework = _own == LogLevel.DebugLevel ? LogLevel.DebugLevel : LogLevel.WarningLevel;
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(Write);
    }

    /// <summary>The Akka level of a cloudfs.log-level value (error, warning, info, debug); refuses anything else.</summary>
    public static LogLevel ParseLevel(string level) => level.Trim().ToLowerInvariant() switch
    {
        "error" => LogLevel.ErrorLevel,
        "warning" or "warn" => LogLevel.WarningLevel,
        "info" => LogLevel.InfoLevel,
        "debug" => LogLevel.DebugLevel,
        _ => throw new FormatException($"'{level}' is not a log level (error, warning, info, debug)"),
    };

    /// <summary>True for CloudFS's own events (the logging class is ours); false for the framework's.</summary>
    internal static bool Own(LogEvent e) => e.LogClass?.Namespace?.StartsWith("CloudFs", StringComparison.Ordinal) == true;

    private void Write(LogEvent e)
    {
        var severity = Severity(e);
        if (severity < (Own(e) ? _own : _framework)) return;
        if (!_filter.ShouldTryKeepMessage(e, out _)) return; // its expanded text is Akka's whole default line, not ours
        var line = Line(e, severity, stackTrace: _own == LogLevel.DebugLevel);
        lock (_out) _out.WriteLine(line);
    }

    /// <summary>The level the node prints an event at: Akka's, except remoting's connection lines (debug).</summary>
    internal static LogLevel Severity(LogEvent e) => RemotingLifecycleLines.Is(e) ? LogLevel.DebugLevel : e.LogLevel();

    /// <summary>The node's line for an event: UTC ISO 8601 timestamp, level, source, message, and its cause (with the
    /// stack trace when <paramref name="stackTrace"/>, else its type and message).</summary>
    internal static string Line(LogEvent e, LogLevel severity, bool stackTrace)
    {
        var level = severity switch
        {
            LogLevel.ErrorLevel => "ERROR",
            LogLevel.WarningLevel => "WARN ",
            LogLevel.InfoLevel => "INFO ",
            _ => "DEBUG",
        };
        var line = $"{e.Timestamp.ToUniversalTime():yyyy-MM-dd'T'HH:mm:ss.fff'Z'} {level} [{Source(e.LogSource)}] {e.Message}";
        if (e is Error { Cause: { } cause })
            line += stackTrace ? $"{Environment.NewLine}{cause}" : $": {cause.GetType().Name}: {cause.Message}";
        return line;
    }

    /// <summary>An actor path's last element, or a logger's name without its "(akka://system)" suffix.</summary>
    private static string Source(string source)
    {
        var paren = source.IndexOf(" (", StringComparison.Ordinal);
        if (paren > 0) source = source[..paren];
        var slash = source.LastIndexOf('/');
        var name = slash >= 0 && slash < source.Length - 1 ? source[(slash + 1)..] : source;
        var hash = name.IndexOf('#');
        return hash > 0 ? name[..hash] : name;
    }
}
