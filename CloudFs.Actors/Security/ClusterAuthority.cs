// The cluster's certificate authority (`cloudfs cert init`, `cloudfs cert issue`): an ECDSA P-256 root that signs node
// certificates (host id and addresses) and operator certificates (a name), with .NET's own certificate APIs.
using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Security;

public sealed class ClusterAuthority : IDisposable
{
    public static readonly TimeSpan DefaultAuthorityLifetime = TimeSpan.FromDays(3650);
    public static readonly TimeSpan DefaultCertificateLifetime = TimeSpan.FromDays(825);
    // Clocks of hosts differ a little: a certificate issued now must already be valid on a host slightly behind.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    private ClusterAuthority(string directory, X509Certificate2 certificate)
    {
        Directory = directory;
        Certificate = certificate;
    }

    public string Directory { get; }
    /// <summary>The authority's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>
    /// Creates a new authority in <paramref name="directory"/> (ca-cert.pem, and ca-key.pem readable by the owner only).
    /// Refuses a directory that already holds either file: replacing an authority would orphan every certificate it issued.
    /// </summary>
    public static ClusterAuthority Create(string directory, TimeSpan? lifetime = null)
    {
        var full = Path.GetFullPath(directory);
        foreach (var file in new[] { CertificateFiles.AuthorityCertificate, CertificateFiles.AuthorityKey })
            if (File.Exists(Path.Combine(full, file)))
                throw new CertificateException($"{full} already holds a cluster authority ({file}); it is never overwritten (remove it yourself to start over, which invalidates every certificate it issued)");

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var request = new CertificateRequest($"CN=CloudFS cluster authority {suffix}", key, HashAlgorithmName.SHA256);
        // A root that signs end certificates only (path length 0): a certificate it issued can never issue others.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(now - ClockSkew, now + (lifetime ?? DefaultAuthorityLifetime));

        System.IO.Directory.CreateDirectory(full);
        WriteAll(full, [
            (CertificateFiles.AuthorityCertificate, certificate.ExportCertificatePem(), false),
            (CertificateFiles.AuthorityKey, key.ExportPkcs8PrivateKeyPem(), true),
        ]);
        return new ClusterAuthority(full, certificate);
    }

    /// <summary>Opens the authority `cloudfs cert init` made in <paramref name="directory"/> (its certificate and key).</summary>
    public static ClusterAuthority Open(string directory)
    {
        var full = Path.GetFullPath(directory);
        var certificate = Path.Combine(full, CertificateFiles.AuthorityCertificate);
        var key = Path.Combine(full, CertificateFiles.AuthorityKey);
        if (!File.Exists(certificate) || !File.Exists(key))
            throw new CertificateException($"{full} is not a cluster authority (it needs {CertificateFiles.AuthorityCertificate} and {CertificateFiles.AuthorityKey}; create one with `cloudfs cert init {directory}`)");
        try
        {
            return new ClusterAuthority(full, X509Certificate2.CreateFromPemFile(certificate, key));
        }
        catch (CryptographicException e)
        {
            throw new CertificateException($"the cluster authority in {full} cannot be read ({e.Message.TrimEnd('.')})", e);
        }
    }

    /// <summary>
    /// A node certificate: host id <paramref name="hostId"/>, its addresses (IPs, or host names) as subject alternative
    /// names, for both TLS server and client use; with its new private key.
    /// </summary>
    public X509Certificate2 IssueNode(Id160 hostId, IReadOnlyList<string> addresses, TimeSpan? lifetime = null)
    {
        if (addresses.Count == 0) throw new CertificateException("a node certificate needs at least one address (--addr)");
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri(ClusterCertificate.HostUriPrefix + hostId));
        foreach (var address in addresses)
        {
            // An IP written out in full ("1.2.3" would parse as 1.2.0.3); a name of digits and dots is a mistyped IP.
            var full = address.Contains(':') || address.Count(c => c == '.') == 3;
            if (full && IPAddress.TryParse(address, out var ip))
                names.AddIpAddress(ip);
            else if (Uri.CheckHostName(address) == UriHostNameType.Dns && !address.All(c => char.IsAsciiDigit(c) || c == '.'))
                names.AddDnsName(address);
            else
                throw new CertificateException($"'{address}' is neither an IP address nor a host name");
        }
        return Issue($"CN=cloudfs host {hostId}", names, lifetime);
    }

    /// <summary>An operator certificate (the CLI's): a name and no host id, so it can never pose as a node.</summary>
    public X509Certificate2 IssueOperator(string name, TimeSpan? lifetime = null)
    {
        if (!ClusterCertificate.IsOperatorName(name))
            throw new CertificateException($"'{name}' is not an operator name (1-64 letters, digits, '.', '_' or '-')");
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri(ClusterCertificate.OperatorUriPrefix + name));
        return Issue($"CN=cloudfs operator {name}", names, lifetime);
    }

    /// <summary>
    /// Writes a node's certificate directory: ca-cert.pem, server-cert.pem and server-key.pem, and the same certificate
    /// and key again as client-cert.pem and client-key.pem (qemu and libnbd read the client pair, the node the server one).
    /// Refuses a directory that already holds any of these files; nothing is written then.
    /// </summary>
    public ClusterCertificate WriteNodeDirectory(string directory, X509Certificate2 issued)
    {
        var (certificate, key) = Pem(issued);
        WriteDirectory(directory, [
            (CertificateFiles.AuthorityCertificate, Certificate.ExportCertificatePem(), false),
            (CertificateFiles.ServerCertificate, certificate, false),
            (CertificateFiles.ServerKey, key, true),
            (CertificateFiles.ClientCertificate, certificate, false),
            (CertificateFiles.ClientKey, key, true),
        ]);
        return ClusterCertificate.Read(issued);
    }

    /// <summary>Writes an operator's certificate directory: ca-cert.pem, client-cert.pem, client-key.pem.</summary>
    public ClusterCertificate WriteOperatorDirectory(string directory, X509Certificate2 issued)
    {
        var (certificate, key) = Pem(issued);
        WriteDirectory(directory, [
            (CertificateFiles.AuthorityCertificate, Certificate.ExportCertificatePem(), false),
            (CertificateFiles.ClientCertificate, certificate, false),
            (CertificateFiles.ClientKey, key, true),
        ]);
        return ClusterCertificate.Read(issued);
    }

    public void Dispose() => Certificate.Dispose();

    private X509Certificate2 Issue(string subject, SubjectAlternativeNameBuilder names, TimeSpan? lifetime)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        // digitalSignature only, as RFC 5480 asks of an ECDSA key, and not critical: qemu's tls-creds-x509 refuses a
        // certificate whose critical key usage lacks keyEncipherment (an RSA notion), and accepts a non-critical one.
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuth, ClientAuth], false));
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        var now = DateTimeOffset.UtcNow;
        var notAfter = now + (lifetime ?? DefaultCertificateLifetime);
        if (notAfter > Certificate.NotAfter) notAfter = Certificate.NotAfter; // never outlive the authority
        using var signed = request.Create(Certificate, now - ClockSkew, notAfter, SerialNumber());
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>A random positive 128-bit serial number (RFC 5280: unique per issuer, at most 20 bytes).</summary>
    private static byte[] SerialNumber()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        serial[0] |= 0x01; // no leading zero byte: the DER integer stays 16 bytes
        return serial;
    }

    private static (string Certificate, string Key) Pem(X509Certificate2 issued)
    {
        using var key = issued.GetECDsaPrivateKey() ?? throw new CertificateException("the issued certificate carries no ECDSA private key");
        return (issued.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    private static void WriteDirectory(string directory, (string Name, string Text, bool Secret)[] files)
    {
        var full = Path.GetFullPath(directory);
        var existing = files.Select(f => f.Name).Where(f => File.Exists(Path.Combine(full, f))).ToArray();
        if (existing.Length > 0)
            throw new CertificateException($"{full} already holds {string.Join(", ", existing)}; certificates are never overwritten (choose another --out)");
        System.IO.Directory.CreateDirectory(full);
        WriteAll(full, files);
    }

    /// <summary>Creates every file (keys readable by the owner only, from the moment they exist); on a failure removes
    /// the ones it created, so nothing is half-written.</summary>
    private static void WriteAll(string directory, (string Name, string Text, bool Secret)[] files)
    {
        var created = new List<string>();
        try
        {
            foreach (var (name, text, secret) in files)
            {
                var path = Path.Combine(directory, name);
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows())
                    options.UnixCreateMode = secret ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                        : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
                using var stream = new FileStream(path, options);
                created.Add(path);
                using var writer = new StreamWriter(stream);
                writer.Write(text);
                writer.Write('\n');
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            foreach (var path in created) File.Delete(path);
            throw new CertificateException($"cannot write the certificates into {directory} ({e.Message.TrimEnd('.')})", e);
        }
    }
}
