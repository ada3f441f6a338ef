// The volume lifecycle with the real executable on three nodes (127.0.16.1-3): newdisk --name, names wherever a volume
// is, rm refused while attached over NBD, rm / trash ls / trash restore / resize while one replica is down, which then
// comes back and holds every change (its own NBD export shows the trash state and the new size), purge on every host,
// DELETE /volumes/<id> over HTTP.
using System.Net;
using System.Text.Json;
using CloudFs.Host.Nbd;
using CloudFs.Tests.Nbd;

namespace CloudFs.Tests.EndToEnd;

[Collection(nameof(CloudFs.Tests.Cluster.ClusterCollection))]
public sealed class LifecycleEndToEndTests : IAsyncLifetime
{
    private static readonly string[] Addresses = ["127.0.16.1", "127.0.16.2", "127.0.16.3"];
    private readonly ProcessCluster _cluster = new(Addresses, "--size", "512M");
    private NodeProcess?[] Nodes => _cluster.Nodes;

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private static Task<CloudFs.Tests.Support.ToolResult> Cli(string contact, params string[] args) => Tool.CloudFs([.. args, "--contact", contact]);

    private static async Task<JsonElement[]> Volumes(string contact, params string[] command)
    {
        var json = (await Cli(contact, [.. command, "--json"])).AssertOk().Out;
        return JsonDocument.Parse(json).RootElement.EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    private static JsonElement? Find(JsonElement[] volumes, string id) =>
        volumes.Where(v => v.GetProperty("id").GetString() == id).Select(v => (JsonElement?)v).FirstOrDefault();

    /// <summary>The export's size through node <paramref name="i"/>'s NBD server (its own copy), or null when it is refused.</summary>
    private ulong? ExportSize(int i, string volume)
    {
        using var client = RawNbdClient.Connect(10809, address: IPAddress.Parse(Addresses[i]));
        client.SendOption(NbdProtocol.OptGo, RawNbdClient.GoData(volume));
        ulong? size = null;
        while (true)
        {
            var (_, type, data) = client.ReceiveOptionReply();
            if (type == NbdProtocol.RepAck) return size;
            if ((type & 0x8000_0000) != 0) return null;
            if (type == NbdProtocol.RepInfo && System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(data) == NbdProtocol.InfoExport)
                size = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2));
        }
    }

    [Fact]
    public async Task Rm_trash_restore_resize_and_purge_replicate_to_a_replica_that_was_down_during_rm_and_resize()
    {
        var a = Addresses[0];
        var created = (await Cli(a, "newdisk", "3", "--size", "64M", "--name", "db")).AssertOk();
        var id = created.Out.Trim();
        Assert.Matches("^[0-9a-f]{40}$", id);
        var dup = await Cli(a, "newdisk", "3", "--size", "64M", "--name", "db");
        Assert.NotEqual(0, dup.Code);
        Assert.Contains($"the name 'db' is taken by volume {id}", dup.Err);

        var listed = Find(await Volumes(a, "ls"), id)!.Value;
        Assert.Equal("db", listed.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.Null, listed.GetProperty("parent").ValueKind);
        Assert.Equal(id, (await Cli(a, "info", "db")).AssertOk().Out.Trim());
        Assert.Contains($" {id} ".TrimStart(), (await Cli(a, "ls")).AssertOk().Out);
        Assert.Contains(" db ", (await Cli(a, "ls")).AssertOk().Out);
        (await Tool.QemuIo(Nodes[0]!.Nbd(id), "write -P 0x5a 0 1M", "flush")).AssertOk();

        // Attached read-write over NBD: rm is refused and nothing changes; --force would go ahead.
        using (var attached = RawNbdClient.Connect(10809, address: IPAddress.Parse(Addresses[1])))
        {
            attached.Go(id);
            attached.SendRequest(NbdProtocol.CmdFlush, 1, 0, 0);
            Assert.Equal(0u, attached.ReceiveSimpleReply().Error);
            var refused = await Cli(a, "rm", "db");
            Assert.NotEqual(0, refused.Code);
            Assert.Contains("attached read-write", refused.Err);
            Assert.NotNull(Find(await Volumes(a, "ls"), id));
        }

        // A replica (not the primary) goes down; rm, restore, resize and rm again happen without it.
        var primary = listed.GetProperty("primary").GetString();
        var down = Array.FindIndex(Nodes, n => n!.HostId != primary);
        var up = Enumerable.Range(0, 3).Where(i => i != down).ToArray();
        var contact = Addresses[up[0]];
        var headBefore = await Nodes[up[0]]!.HeadAsync(id);
        Assert.Equal(0, await Nodes[down]!.StopAsync());
        await Nodes[down]!.DisposeAsync();
        Nodes[down] = null;

        var rm = (await Cli(contact, "rm", "db")).AssertOk();
        Assert.StartsWith(id + " ", rm.Out);
        Assert.Null(Find(await Volumes(contact, "ls"), id));
        var trashed = Find(await Volumes(contact, "trash", "ls"), id)!.Value;
        Assert.Equal("db", trashed.GetProperty("name").GetString());
        Assert.True(trashed.TryGetProperty("trashed", out _));
        Assert.Contains($"{id} db {64 << 20} ", (await Cli(contact, "trash", "ls")).AssertOk().Out);
        Assert.NotEqual(0, (await Tool.QemuIo(Nodes[up[0]]!.Nbd(id), "write -P 0x11 0 4k")).Code);
        Assert.Null(ExportSize(up[1], id));
        var again = await Cli(contact, "rm", id);
        Assert.NotEqual(0, again.Code);
        Assert.Contains("in the trash already", again.Err);

        (await Cli(contact, "trash", "restore", "db")).AssertOk();
        Assert.NotNull(Find(await Volumes(contact, "ls"), id));
        var shrink = await Cli(contact, "resize", "db", "32M");
        Assert.NotEqual(0, shrink.Code);
        Assert.Contains("--allow-shrink", shrink.Err);
        var resized = (await Cli(contact, "resize", "db", "128M")).AssertOk();
        Assert.Contains($" {128 << 20} ", resized.Out);
        Assert.Equal(128L << 20, Find(await Volumes(contact, "ls"), id)!.Value.GetProperty("size").GetInt64());
        // Online: a client that connects again sees the new size and writes beyond the old end.
        await Eventually.Until(() => Task.FromResult(ExportSize(up[1], id) == 128UL << 20), TimeSpan.FromSeconds(30), "the new size on the other live node's export");
        (await Tool.QemuIo(Nodes[up[0]]!.Nbd(id), "write -P 0x77 100M 64k", "flush")).AssertOk();
        (await Cli(contact, "rm", "db")).AssertOk();
        var headAfter = await Nodes[up[0]]!.HeadAsync(id);
        Assert.NotEqual(headBefore, headAfter);

        // The replica comes back and catches up: the same head, the trash state (its export is refused), then, once
        // restored, the new size and the data through its own copy.
        Nodes[down] = await _cluster.StartAsync(down);
        await ProcessCluster.WaitForMembersAsync(Nodes, Addresses);
        await Eventually.Until(async () => await Nodes[down]!.HeadAsync(id) == headAfter, TimeSpan.FromSeconds(60), $"the returning replica at {headAfter}");
        Assert.Null(ExportSize(down, id));
        (await Cli(Addresses[down], "trash", "restore", id)).AssertOk();
        await Eventually.Until(() => Task.FromResult(ExportSize(down, id) == 128UL << 20), TimeSpan.FromSeconds(30), "the returning replica's export at 128M");
        (await Tool.QemuIoReadOnly(Nodes[down]!.Nbd(id), "read -P 0x5a 0 1M", "read -P 0x77 100M 64k")).AssertOk();

        // Purge: every host drops its copy; the name is free again.
        var notTrashed = await Cli(contact, "trash", "purge", "db");
        Assert.NotEqual(0, notTrashed.Code);
        Assert.Contains("not in the trash", notTrashed.Err);
        (await Cli(contact, "rm", "db")).AssertOk();
        Assert.Equal(id, (await Cli(contact, "trash", "purge", "db")).AssertOk().Out.Trim());
        Assert.Empty(await Volumes(contact, "trash", "ls"));
        foreach (var n in Nodes) await Eventually.Until(async () => !(await n!.HeadsAsync()).Contains(id), TimeSpan.FromSeconds(30), $"volume {id} gone from {n!.Listen}");
        var reused = (await Cli(contact, "newdisk", "3", "--size", "64M", "--name", "db")).AssertOk().Out.Trim();
        Assert.NotEqual(id, reused);
    }

    [Fact]
    public async Task Delete_over_http_moves_a_volume_to_the_trash_like_rm()
    {
        var id = (await Cli(Addresses[0], "newdisk", "3", "--size", "64M")).AssertOk().Out.Trim();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
        var missing = await http.DeleteAsync($"{Nodes[1]!.HttpBase}/volumes/{new string('0', 40)}");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        var response = await http.DeleteAsync($"{Nodes[1]!.HttpBase}/volumes/{id}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(id, body.GetProperty("id").GetString());
        Assert.True(body.TryGetProperty("trashed", out _));
        Assert.NotNull(Find(await Volumes(Addresses[2], "trash", "ls"), id));

        var twice = await http.DeleteAsync($"{Nodes[1]!.HttpBase}/volumes/{id}");
        Assert.Equal(HttpStatusCode.Conflict, twice.StatusCode);
        Assert.Contains("in the trash already", await twice.Content.ReadAsStringAsync());

        // Lifecycle entries are a normal part of a volume's life: the primary's writer recovers from the new head
        // after each (it restarts on purpose), and nobody prints an ERROR for it.
        (await Cli(Addresses[2], "trash", "restore", id)).AssertOk();
        (await Cli(Addresses[2], "resize", id, "128M")).AssertOk();
        foreach (var n in Nodes)
        {
            var errors = n!.Stderr.Split('\n').Where(l => l.Contains(" ERROR [", StringComparison.Ordinal) || l.StartsWith("[ERROR]", StringComparison.Ordinal)).ToArray();
            Assert.True(errors.Length == 0, $"node {n.Listen} printed:\n{string.Join("\n", errors)}");
        }
    }
}
