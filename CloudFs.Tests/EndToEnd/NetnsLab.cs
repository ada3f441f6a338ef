// A private network for partition tests: N network namespaces (cfs1-ID..), each with a veth into one bridge in the
// root namespace, addresses 10.77.X.1..N/24, and the root namespace on 10.77.X.254 (so tests reach every node).
// Cutting a member sets its veth down; everything is removed on dispose, whatever happened before.
using System.Runtime.InteropServices;

namespace CloudFs.Tests.EndToEnd;

internal sealed partial class NetnsLab : IAsyncDisposable
{
    private readonly string _id;
    private readonly int _subnet;
    private readonly int _count;
    private readonly List<string[]> _undo = []; // `ip` commands that remove what was created, run in reverse

    private NetnsLab(string id, int subnet, int count)
    {
        _id = id;
        _subnet = subnet;
        _count = count;
    }

    private string Bridge => $"cfsbr-{_id}";
    private string HostSide(int i) => $"cfsv{i + 1}-{_id}";
    private string InsideName(int i) => $"cfsn{i + 1}-{_id}";

    /// <summary>The namespace of member <paramref name="i"/> (0-based), for `ip netns exec`.</summary>
    public string Namespace(int i) => $"cfs{i + 1}-{_id}";

    /// <summary>The address of member <paramref name="i"/> (0-based).</summary>
    public string Address(int i) => $"10.77.{_subnet}.{i + 1}";

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    /// <summary>Creates the namespaces and the bridge; fails the test with the reason when it cannot (not root, no ip).</summary>
    public static async Task<NetnsLab> CreateAsync(int count)
    {
        Assert.True(GetEuid() == 0, "the partition test needs root for `ip netns` and veth links (run the tests as root)");
        Tool.Require("ip");
        var used = (await Ip("-4", "-o", "addr", "show")).Out;
        var subnet = Enumerable.Range(0, 64).Select(_ => Random.Shared.Next(1, 255)).First(x => !used.Contains($"10.77.{x}.", StringComparison.Ordinal));
        var lab = new NetnsLab(Convert.ToHexString(BitConverter.GetBytes(Random.Shared.Next()))[..4].ToLowerInvariant(), subnet, count);
        try
        {
            await lab.Do(["link", "add", lab.Bridge, "type", "bridge"], ["link", "del", lab.Bridge]);
            await lab.Do(["addr", "add", $"10.77.{subnet}.254/24", "dev", lab.Bridge], null);
            await lab.Do(["link", "set", lab.Bridge, "up"], null);
            for (var i = 0; i < count; i++)
            {
                var ns = lab.Namespace(i);
                await lab.Do(["netns", "add", ns], ["netns", "del", ns]);
                await lab.Do(["-n", ns, "link", "set", "lo", "up"], null);
                await lab.Do(["link", "add", lab.HostSide(i), "type", "veth", "peer", "name", lab.InsideName(i), "netns", ns], ["link", "del", lab.HostSide(i)]);
                await lab.Do(["link", "set", lab.HostSide(i), "master", lab.Bridge], null);
                await lab.Do(["link", "set", lab.HostSide(i), "up"], null);
                await lab.Do(["-n", ns, "addr", "add", $"{lab.Address(i)}/24", "dev", lab.InsideName(i)], null);
                await lab.Do(["-n", ns, "link", "set", lab.InsideName(i), "up"], null);
            }
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
        return lab;
    }

    /// <summary>Cuts member <paramref name="i"/> off the bridge: nobody (not even the root namespace) reaches it.</summary>
    public async Task CutAsync(int i) => await Do(["link", "set", HostSide(i), "down"], null);

    public async Task HealAsync(int i) => await Do(["link", "set", HostSide(i), "up"], null);

    /// <summary>Runs a program inside member <paramref name="i"/>'s namespace.</summary>
    public Task<ToolResult> ExecAsync(int i, TimeSpan timeout, params string[] command) =>
        Tool.RunAsync("ip", ["netns", "exec", Namespace(i), .. command], timeout);

    private async Task Do(string[] args, string[]? undo)
    {
        var result = await Ip(args);
        Assert.True(result.Code == 0, $"setting up the partition network failed: {result}");
        if (undo is not null) _undo.Add(undo);
    }

    private static Task<ToolResult> Ip(params string[] args) => Tool.RunAsync("ip", args, TimeSpan.FromSeconds(30));

    /// <summary>Removes the namespaces, veths and bridge (stop the processes inside first); errors are ignored so
    /// that every step runs.</summary>
    public async ValueTask DisposeAsync()
    {
        for (var k = _undo.Count - 1; k >= 0; k--)
        {
            try { await Ip(_undo[k]); }
            catch (Exception) { /* best effort: the rest must still be removed */ }
        }
        _undo.Clear();
    }
}
