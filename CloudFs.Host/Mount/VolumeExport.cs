// Where `cloudfs mount` reaches a volume: its NBD export through the contacted node, in plain text or (with --tls DIR,
// the operator's certificate directory the other commands take) over TLS with that client certificate. nbdfuse serves
// it through nbdkit's nbd plugin (`--command nbdkit -s nbd ...`) with nbdkit's retry filter, which reconnects when the
// connection breaks (the node restarts, or its connection is cut) and repeats the request: the mount's file system
// never sees the break. The connection names its read-write attachment (export VOLUME#NAME, docs/ATTACH.md,
// "Reconnecting"), so a reconnection gets the mount's own lease back, and is refused (NBD_REP_ERR_POLICY) once that
// lease was revoked or taken over: a mount never writes again after another client had the volume. Over TLS nbdkit
// is needed anyway: libnbd refuses a tls-certificates parameter in a URI unless the program allows local files, which
// nbdfuse 1.14 does not ("local file access (tls-certificates) is not allowed").
namespace CloudFs.Host.Mount;

/// <param name="Host">The node's address (an IPv6 address without brackets).</param>
/// <param name="TlsDirectory">The client certificate directory (ca-cert.pem, client-cert.pem, client-key.pem), or null.</param>
internal sealed record VolumeExport(string Host, int Port, string Volume, string? TlsDirectory)
{
    /// <summary>How long a broken connection is tried again (once a second) before the mount's I/O fails: a node restart or
    /// a failover takes seconds.</summary>
    public const int ReconnectSeconds = 120;

    /// <summary>What nbdkit prints when the node refuses the attachment's name (its lease was superseded).</summary>
    public const string RefusedLine = "server policy prevents NBD_OPT_GO";

    private string UriHost => Host.Contains(':') ? $"[{Host}]" : Host;

    /// <summary>The export's NBD URI (no attachment name), as nbdinfo takes it.</summary>
    public string Uri => TlsDirectory is null
        ? $"nbd://{UriHost}:{Port}/{Volume}"
        : $"nbds://{UriHost}:{Port}/{Volume}?tls-certificates={System.Uri.EscapeDataString(TlsDirectory)}";

    /// <summary>The arguments of nbdfuse that serve the export as the file <paramref name="mountpoint"/>/nbd, under the
    /// read-write attachment <paramref name="attachment"/>.</summary>
    public string[] NbdFuseArguments(string mountpoint, string attachment) =>
    [
        mountpoint, "--command", "nbdkit", "-s", "--exit-with-parent", "--filter=retry", "nbd",
        $"hostname={Host}", $"port={Port}", $"export={Volume}#{attachment}",
        $"retries={ReconnectSeconds}", "retry-delay=1", "retry-exponential=no",
        .. TlsDirectory is null ? Array.Empty<string>() : ["tls=require", $"tls-certificates={TlsDirectory}"],
    ];
}
