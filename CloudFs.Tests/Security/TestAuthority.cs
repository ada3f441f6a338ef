// A cluster authority in a temporary directory, with helpers that issue node and operator certificate directories
// under it: what every TLS test starts from. Removed on dispose.
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Security;

internal sealed class TestAuthority : IDisposable
{
    public TestAuthority()
    {
        Root = Directory.CreateTempSubdirectory("cloudfs-tls-").FullName;
        Authority = ClusterAuthority.Create(AuthorityDirectory);
    }

    public string Root { get; }
    public string AuthorityDirectory => Path.Combine(Root, "ca");
    public ClusterAuthority Authority { get; }

    /// <summary>Issues a node directory for <paramref name="host"/> (random when null) naming <paramref name="addresses"/>.</summary>
    public string Node(string name, Id160? host = null, params string[] addresses)
    {
        var dir = Path.Combine(Root, name);
        using var issued = Authority.IssueNode(host ?? Id160.Random(), addresses.Length == 0 ? ["127.0.0.1"] : addresses);
        Authority.WriteNodeDirectory(dir, issued);
        return dir;
    }

    /// <summary>Issues an operator directory (ca-cert.pem, client-cert.pem, client-key.pem).</summary>
    public string Operator(string name)
    {
        var dir = Path.Combine(Root, name);
        using var issued = Authority.IssueOperator(name);
        Authority.WriteOperatorDirectory(dir, issued);
        return dir;
    }

    public ClusterTls LoadNode(string name, Id160? host = null, params string[] addresses) => ClusterTls.Load(Node(name, host, addresses));

    public void Dispose()
    {
        Authority.Dispose();
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
    }
}
