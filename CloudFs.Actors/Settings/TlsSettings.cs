// cloudfs.tls { }: the node's certificate directory (every channel over TLS with it) and whether it may listen off
// loopback without one.
namespace CloudFs.Actors.Settings;

/// <param name="Directory">A node certificate directory (`cloudfs cert issue`); null: no TLS.</param>
/// <param name="Insecure">Listen on an address other than loopback without TLS.</param>
public sealed record TlsSettings(string? Directory, bool Insecure)
{
    public static TlsSettings Read(SettingsReader r) => new(
        r.Text("cloudfs.tls.directory") is { Length: > 0 } directory ? directory : null,
        r.Flag("cloudfs.tls.insecure"));
}
