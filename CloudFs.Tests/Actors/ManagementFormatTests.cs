// `cloudfs ls` and `cloudfs cluster show` text exactly as SPEC.md describes it.
using System.Text.Json;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class ManagementFormatTests
{
    private static readonly string A = new('a', 40), B = new('b', 40), C = new('c', 40), V = new('f', 40);

    [Fact]
    public void Ls_prints_nine_fields_in_spec_order()
    {
        var list = new VolumeList([
            new VolumeSummary(A, 8L << 30, VolumeMode.Sync, B, [B, C], V, Health: VolumeHealth.Degraded),
            new VolumeSummary(C, 512, VolumeMode.Async, null, [B], A, Health: VolumeHealth.Damaged, Parent: V),
        ]);
        Assert.Equal($"{A} 8589934592 sync {B} {B},{C} {V} - degraded -\n{C} 512 async - {B} {A} - damaged {V}\n", ManagementFormat.VolumeLines(list));
    }

    [Fact]
    public void Ls_json_has_the_nine_fields()
    {
        var json = ManagementFormat.VolumesJson(new VolumeList([new VolumeSummary(A, 1024, VolumeMode.Async, null, [B], V)]));
        using var doc = JsonDocument.Parse(json);
        var v = Assert.Single(doc.RootElement.EnumerateArray().ToArray());
        Assert.Equal(A, v.GetProperty("id").GetString());
        Assert.Equal(1024, v.GetProperty("size").GetInt64());
        Assert.Equal("async", v.GetProperty("mode").GetString());
        Assert.Equal(JsonValueKind.Null, v.GetProperty("primary").ValueKind);
        Assert.Equal([B], v.GetProperty("replicas").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(V, v.GetProperty("version").GetString());
        Assert.Equal(JsonValueKind.Null, v.GetProperty("name").ValueKind);
        Assert.Equal("healthy", v.GetProperty("health").GetString());
        Assert.Equal(JsonValueKind.Null, v.GetProperty("parent").ValueKind);
    }

    [Fact]
    public void Cluster_show_lists_members_then_the_count()
    {
        var members = new ClusterMembers([
            new MemberLine("akka.tcp://cloudfs@127.0.0.1:4053", [], "Up", "Reachable", A),
            new MemberLine("akka.tcp://cloudfs@127.0.0.2:4053", ["x", "y"], "Up", "Unreachable", "-"),
        ], "akka.tcp://cloudfs@127.0.0.1:4053", "akka.tcp://cloudfs@127.0.0.1:4053");
        var lines = ManagementFormat.ClusterShow(members).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal($"akka.tcp://cloudfs@127.0.0.1:4053 | [] | Up | Reachable | {A}", lines[0]);
        Assert.Equal("akka.tcp://cloudfs@127.0.0.2:4053 | [x,y] | Up | Unreachable | -", lines[1]);
        Assert.Equal("Count: 2", lines[2]);
    }
}
