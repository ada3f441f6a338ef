// OneNode with --tls: a cluster authority of its own, the node's certificate for a random host id on its address, and
// an operator's certificate directory ("admin") for the clients the test drives.
using CloudFs.BlockDevice;
using CloudFs.Tests.Security;

namespace CloudFs.Tests.Support;

public class OneNodeWithTls(string address, params string[] arguments) : OneNode(address, arguments)
{
    private string? _nodeCertificates;
    private string? _operator;

    internal TestAuthority Authority { get; } = new();
    public Id160 HostId { get; } = Id160.Random();
    /// <summary>The node's --tls directory.</summary>
    public string NodeCertificates => _nodeCertificates ??= Authority.Node("node", HostId, Address);
    /// <summary>The operator's certificate directory: what the CLI's --tls, curl and the NBD clients present.</summary>
    public string Operator => _operator ??= Authority.Operator("admin");
    public string CaCert => Path.Combine(Operator, "ca-cert.pem");

    protected override IEnumerable<string> Arguments => [.. base.Arguments, "--tls", NodeCertificates];

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Authority.Dispose();
    }
}
