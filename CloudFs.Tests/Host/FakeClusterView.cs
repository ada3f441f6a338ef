// An IClusterView for the HTTP API's tests: a fixed member list, volumes answered in pages, an optional primary address.
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

    public ClusterMembers Members = new(
        [new MemberLine("akka.tcp://cloudfs@127.0.0.1:4053", ["cloudfs"], "Up", "Reachable", new string('a', 40))],
        "akka.tcp://cloudfs@127.0.0.1:4053", "akka.tcp://cloudfs@127.0.0.1:4053");

    /// <summary>Every management message the view was asked, in order.</summary>
    public readonly List<IManagementMessage> Asked = [];

    /// <summary>Answers a created volume (CreateVolume, BranchVolume) with; null refuses creation.</summary>
    public Func<IManagementMessage, IManagementMessage>? Answer;

    public Task<IManagementMessage> AskAsync(IManagementMessage request, TimeSpan timeout, CancellationToken ct)
    {
        lock (Asked) Asked.Add(request);
        IManagementMessage answer = request switch
        {
            ShowCluster => Members,
            ListVolumePage p when PagesAnswered++ >= PagesBeforeFailure => new CommandFailed("the fake view stopped answering pages"),
            ListVolumePage p => Page(p),
            GetVolume g => Volumes.FirstOrDefault(v => v.Id == g.VolumeId || v.Name == g.VolumeId) is { } v ? v : new CommandFailed($"no volume {g.VolumeId} on this cluster"),
            _ when Answer is not null => Answer(request),
            _ => new CommandFailed($"the fake view does not answer {request.GetType().Name}"),
        };
        return Task.FromResult(answer);
    }

    /// <summary>Pages of <see cref="Volumes"/> as placement cuts them, PageSize at most.</summary>
    public int PageSize = ListVolumePage.MaxLimit;

    /// <summary>Pages answered so far; after <see cref="PagesBeforeFailure"/> of them every page asked is refused.</summary>
    public int PagesAnswered;
    public int PagesBeforeFailure = int.MaxValue;

    private VolumePage Page(ListVolumePage p)
    {
        var byId = Volumes.ToDictionary(v => v.Id);
        var (ids, next) = CloudFs.Actors.Replication.VolumePaging.Page(byId.Keys.Order(StringComparer.Ordinal).ToArray(), p.After, Math.Min(p.Limit, PageSize),
            int.MaxValue, id => !p.UnhealthyOnly || byId[id].Health != VolumeHealth.Healthy);
        return new VolumePage(ids.Select(id => byId[id]).ToArray(), next, FailedHosts);
    }

    public Task<string?> PrimaryHttpAsync(Id160 volume, CancellationToken ct) => Task.FromResult(Primary);
}
