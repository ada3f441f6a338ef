// Where the HTTP API redirects to: the primary member's akka host with this node's HTTP port.
namespace CloudFs.Tests.Host;

public sealed class ClusterViewTests
{
    [Theory]
    [InlineData("akka.tcp://cloudfs@127.0.0.2:4053", "127.0.0.2")]
    [InlineData("akka.tcp://cloudfs@10.1.2.3:5000", "10.1.2.3")]
    [InlineData("not an address", null)]
    public void The_primary_http_host_is_the_akka_host_of_its_member(string address, string? host) =>
        Assert.Equal(host, CloudFs.Host.Http.ManagementClusterView.HostOf(address));
}
