// The file names of a certificate directory: the layout qemu's tls-creds-x509 and libnbd's set_tls_certificates
// read as they are, so one directory serves the node, the CLI, qemu and nbdinfo alike.
namespace CloudFs.Actors.Security;

public static class CertificateFiles
{
    /// <summary>The cluster authority's certificate (every directory carries a copy).</summary>
    public const string AuthorityCertificate = "ca-cert.pem";
    /// <summary>The authority's private key: only in the directory `cloudfs cert init` made (mode 0600).</summary>
    public const string AuthorityKey = "ca-key.pem";
    public const string ServerCertificate = "server-cert.pem";
    public const string ServerKey = "server-key.pem";
    public const string ClientCertificate = "client-cert.pem";
    public const string ClientKey = "client-key.pem";
}
