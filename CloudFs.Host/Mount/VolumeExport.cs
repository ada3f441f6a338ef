// Where `cloudfs mount` reaches a volume: its NBD export through the contacted node, in plain text or (with --tls DIR,
// the operator's certificate directory the other commands take) over TLS with that client certificate. nbdfuse opens a
// plain export by its URI itself. Over TLS it runs nbdkit's nbd plugin as its server (`--command nbdkit -s nbd ...
// tls-certificates=DIR`): libnbd refuses a tls-certificates parameter in a URI unless the program allows local files,
// which nbdfuse 1.14 does not ("local file access (tls-certificates) is not allowed").
namespace CloudFs.Host.Mount;

/// <param name="Host">The node's address (an IPv6 address without brackets).</param>
/// <param name="TlsDirectory">The client certificate directory (ca-cert.pem, client-cert.pem, client-key.pem), or null.</param>
internal sealed record VolumeExport(string Host, int Port, string Volume, string? TlsDirectory)
{
    private string UriHost => Host.Contains(':') ? $"[{Host}]" : Host;

    /// <summary>The export's NBD URI, as nbdinfo takes it.</summary>
    public string Uri => TlsDirectory is null
        ? $"nbd://{UriHost}:{Port}/{Volume}"
        : $"nbds://{UriHost}:{Port}/{Volume}?tls-certificates={System.Uri.EscapeDataString(TlsDirectory)}";

    /// <summary>The arguments of nbdfuse that serve the export as the file <paramref name="mountpoint"/>/nbd.</summary>
    public string[] NbdFuseArguments(string mountpoint) => TlsDirectory is null
        ? [mountpoint, Uri]
        : [mountpoint, "--command", "nbdkit", "-s", "--exit-with-parent", "nbd", $"hostname={Host}", $"port={Port}", $"export={Volume}",
           "tls=require", $"tls-certificates={TlsDirectory}"];
}
