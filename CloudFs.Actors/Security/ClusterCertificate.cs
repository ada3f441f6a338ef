// What a certificate of the cluster authority says about its holder: a node (its host id and addresses) or an
// operator (a name, no host id). The host id travels as the subject alternative name URI urn:cloudfs:host:<40 hex>,
// an operator's name as urn:cloudfs:operator:<name>; the subject's common name repeats them for people only.
using System.Formats.Asn1;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Security;

public sealed record ClusterCertificate
{
    /// <summary>A node certificate's subject alternative name URI is this prefix and the host id in lower-case hex.</summary>
    public const string HostUriPrefix = "urn:cloudfs:host:";
    /// <summary>An operator certificate's subject alternative name URI is this prefix and the operator's name.</summary>
    public const string OperatorUriPrefix = "urn:cloudfs:operator:";

    private const string SubjectAlternativeNameOid = "2.5.29.17";
    private static readonly Asn1Tag UriTag = new(TagClass.ContextSpecific, 6);

    /// <summary>The host id of a node certificate; null for an operator's.</summary>
    public Id160? HostId { get; init; }
    /// <summary>The name of an operator certificate; null for a node's.</summary>
    public string? OperatorName { get; init; }
    /// <summary>The IP addresses the certificate names (a node's listen addresses).</summary>
    public IReadOnlyList<IPAddress> Addresses { get; init; } = [];
    /// <summary>The host names the certificate names.</summary>
    public IReadOnlyList<string> DnsNames { get; init; } = [];
    public string Subject { get; init; } = "";
    public string Issuer { get; init; } = "";
    public DateTime NotAfter { get; init; }
    /// <summary>SHA-256 of the certificate, hex.</summary>
    public string Thumbprint { get; init; } = "";

    public bool IsNode => HostId is not null;
    public bool IsOperator => OperatorName is not null;

    /// <summary>"host &lt;id&gt;", "operator &lt;name&gt;", or the subject of a certificate that is neither.</summary>
    public override string ToString() =>
        HostId is { } host ? $"host {host}" : OperatorName is { } name ? $"operator {name}" : $"'{Subject}'";

    /// <summary>True when the certificate names <paramref name="address"/> (an IP, or a host name case-insensitively).</summary>
    public bool Names(string address) =>
        IPAddress.TryParse(address, out var ip)
            ? Addresses.Any(a => a.Equals(ip))
            : DnsNames.Any(d => string.Equals(d, address, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Reads the identity out of <paramref name="certificate"/> without judging whether it is trusted (that is
    /// <see cref="ClusterTls.Validate"/>). A certificate naming two host ids, or both a host and an operator, or a
    /// cloudfs URI that does not parse, is refused with a <see cref="CertificateException"/>.
    /// </summary>
    public static ClusterCertificate Read(X509Certificate2 certificate)
    {
        Id160? host = null;
        string? name = null;
        var addresses = new List<IPAddress>();
        var dns = new List<string>();
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != SubjectAlternativeNameOid) continue;
            var san = extension as X509SubjectAlternativeNameExtension ?? new X509SubjectAlternativeNameExtension(extension.RawData, extension.Critical);
            addresses.AddRange(san.EnumerateIPAddresses());
            dns.AddRange(san.EnumerateDnsNames());
            foreach (var uri in Uris(extension.RawData))
            {
                if (uri.StartsWith(HostUriPrefix, StringComparison.Ordinal))
                {
                    if (host is not null || !Id160.TryParse(uri[HostUriPrefix.Length..], out var id))
                        throw new CertificateException($"the certificate '{certificate.Subject}' names more than one host id or a malformed one ({uri})");
                    host = id;
                }
                else if (uri.StartsWith(OperatorUriPrefix, StringComparison.Ordinal))
                {
                    var candidate = uri[OperatorUriPrefix.Length..];
                    if (name is not null || !IsOperatorName(candidate))
                        throw new CertificateException($"the certificate '{certificate.Subject}' names more than one operator or a malformed one ({uri})");
                    name = candidate;
                }
            }
        }
        if (host is not null && name is not null)
            throw new CertificateException($"the certificate '{certificate.Subject}' names both a host and an operator");
        return new ClusterCertificate
        {
            HostId = host,
            OperatorName = name,
            Addresses = addresses,
            DnsNames = dns,
            Subject = certificate.Subject,
            Issuer = certificate.Issuer,
            NotAfter = certificate.NotAfter.ToUniversalTime(),
            Thumbprint = certificate.GetCertHashString(HashAlgorithmName.SHA256).ToLowerInvariant(),
        };
    }

    /// <summary>An operator's name: 1-64 characters of letters, digits, '.', '_' and '-'.</summary>
    public static bool IsOperatorName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    /// <summary>The uniformResourceIdentifier entries of a subjectAltName extension (GeneralNames, RFC 5280 4.2.1.6).</summary>
    private static List<string> Uris(byte[] rawData)
    {
        var uris = new List<string>();
        try
        {
            var names = new AsnReader(rawData, AsnEncodingRules.DER).ReadSequence();
            while (names.HasData)
            {
                var tag = names.PeekTag();
                if (tag.HasSameClassAndValue(UriTag)) uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, UriTag));
                else names.ReadEncodedValue();
            }
        }
        catch (AsnContentException e)
        {
            throw new CertificateException("the certificate's subject alternative names do not parse", e);
        }
        return uris;
    }
}
