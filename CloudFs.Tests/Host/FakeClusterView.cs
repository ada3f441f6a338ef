// An IClusterView for the HTTP API's tests: a fixed member list and an optional primary address.
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using CloudFs.Host.Http;

namespace CloudFs.Tests.Host;

internal sealed class FakeClusterView : IClusterView
{
    public string? Primary;
    public readonly List<VolumeSummary> Volumes = [];
    public readonly List<HostFailure> FailedHosts = [];
    public string? Unhealthy { get; set; }
    public string? NotReady { get; set; }

    public Task<ClusterMembers> MembersAsync(CancellationToken ct) => Task.FromResult(new ClusterMembers(
        [new MemberLine("akka.tcp://cloudfs@127.0.0.1:4053", ["cloudfs"], "Up", "Reachable", new string('a', 40))],
        "akka.tcp://cloudfs@127.0.0.1:4053", "akka.tcp://cloudfs@127.0.0.1:4053"));

    public Task<VolumeList> VolumesAsync(CancellationToken ct) => Task.FromResult(new VolumeList(Volumes, FailedHosts));

    public Task<string?> PrimaryHttpAsync(Id160 volume, CancellationToken ct) => Task.FromResult(Primary);

    /// <summary>What DELETE /volumes/… asked for (volume, force), and what it is answered.</summary>
    public readonly List<(string Volume, bool Force)> Removed = [];
    public Func<string, IManagementMessage> RemoveAnswer = v => new CommandFailed($"{VolumeResolver.NotFound}{v} on this cluster");

    public Task<IManagementMessage> RemoveVolumeAsync(string volume, bool force, CancellationToken ct)
    {
        Removed.Add((volume, force));
        return Task.FromResult(RemoveAnswer(volume));
    }
}
