// What a node with remoting TLS prints about connections it refuses: one line per peer address, no stack traces.
// DotNetty's server side logs every failed handshake (a stranger, a port probe, the crash detector's connect) as an
// error with the exception's stack and a troubleshooting list, then a warning; a peer retrying every few seconds
// would fill the log. The reasons that matter (whose certificate, why not) are RemotingTls's own warning.
using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Akka.Event;

namespace CloudFs.Actors.Security;

public sealed partial class RemotingTlsLogFilter : LogFilterBase
{
    private const int Capacity = 1024;
    private readonly ConcurrentDictionary<string, byte> _seen = new(StringComparer.Ordinal);

    public override LogFilterType FilterType => LogFilterType.Content;

    public static LogFilterSetup Setup() => new([new RemotingTlsLogFilter()]);

    public override LogFilterDecision ShouldKeepMessage(LogEvent content, string? expandedMessage = null)
    {
        // Only the server side: a failed handshake of this node's own outbound connection stops the actor system
        // (Akka.Remote's rule), and its error is the explanation, so it stays.
        if (!content.LogSource.StartsWith("TcpServerHandler", StringComparison.Ordinal) &&
            !content.LogSource.StartsWith("TcpTransport", StringComparison.Ordinal))
            return LogFilterDecision.NoDecision;
        var message = content.Message?.ToString() ?? "";
        if (content is Error error && (message.StartsWith("TLS handshake failed", StringComparison.Ordinal) ||
                                       message.StartsWith("TLS exception", StringComparison.Ordinal) || IsTlsFailure(error.Cause)))
            return LogFilterDecision.Drop;
        if (content is Warning && (message.StartsWith("Rejected incoming connection from", StringComparison.Ordinal) ||
                                   message.StartsWith("Mutual TLS required but client did not provide a certificate", StringComparison.Ordinal)))
        {
            if (_seen.Count >= Capacity) _seen.Clear(); // many distinct peers: log again rather than grow without bound
            var key = message[..Math.Min(message.Length, 20)] + "\n" + PeerHost(message);
            return _seen.TryAdd(key, 0) ? LogFilterDecision.Keep : LogFilterDecision.Drop;
        }
        return LogFilterDecision.NoDecision;
    }

    /// <summary>A handshake that failed: a refused certificate, or bytes that are not TLS at all (a plain client).</summary>
    private static bool IsTlsFailure(Exception? e) => e switch
    {
        null => false,
        System.Security.Authentication.AuthenticationException => true,
        AggregateException a => a.InnerExceptions.Any(IsTlsFailure),
        // DotNetty.Handlers.Tls.NotSslRecordException, named rather than referenced (DotNetty is Akka.Remote's business).
        _ when e.GetType().Name == "NotSslRecordException" => true,
        _ => IsTlsFailure(e.InnerException),
    };

    /// <summary>The peer's address without the port, which changes with every connection ("[::ffff:10.0.0.9]:41420" → "10.0.0.9").</summary>
    internal static string PeerHost(string message)
    {
        var match = Endpoint().Match(message);
        if (!match.Success) return "";
        var host = match.Groups["host"].Value.Trim('[', ']');
        return host.StartsWith("::ffff:", StringComparison.OrdinalIgnoreCase) ? host[7..] : host;
    }

    [GeneratedRegex(@"(?<host>\[[0-9A-Fa-f:.]+\]|[0-9.]+):\d+")]
    private static partial Regex Endpoint();
}
