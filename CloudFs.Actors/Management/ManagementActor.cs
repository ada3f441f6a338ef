// The management actor (/user/cloudfs-management, registered with the ClusterClient receptionist): answers the
// CLI's management protocol on this node — volumes through the engine, cluster and sharding through Akka.
using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Event;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Node;
using CloudFs.Actors.Security;
using CloudFs.Actors.Serialization;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Actors.Management;

public sealed class ManagementActor : ReceiveActor
{
    public const string Name = "cloudfs-management";
    public const string Path = "/user/" + Name;

    private readonly LogStore _store;
    private readonly Id160 _hostId;
    private readonly TimeSpan _askTimeout;
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly ActorSystem _system = Context.System;
    private readonly IActorRef? _placement;

    /// <param name="placement">The placement singleton's proxy; null runs volumes on this node alone (tests).</param>
    /// <param name="commandTimeout">How long one host's scrub or digest may take (cloudfs.scrub.command-timeout).</param>
    /// <param name="volumes">The volumes' shard region (lifecycle entries go to each volume's primary through it); null:
    /// this node's store appends them itself (tests).</param>
    /// <param name="attachments">This node's read-write NBD attachments; null: none are counted here.</param>
    public static Props Props(LogStore store, Id160 hostId, TimeSpan askTimeout, TimeSpan commandTimeout, IActorRef? placement = null,
        IActorRef? volumes = null, VolumeAttachments? attachments = null) =>
        Akka.Actor.Props.Create(() => new ManagementActor(store, hostId, askTimeout, commandTimeout, placement, volumes, attachments));

    public ManagementActor(LogStore store, Id160 hostId, TimeSpan askTimeout, TimeSpan commandTimeout, IActorRef? placement,
        IActorRef? volumes, VolumeAttachments? attachments)
    {
        _store = store;
        _hostId = hostId;
        _askTimeout = askTimeout;
        _placement = placement;
        var integrity = new IntegrityChecks(Context.System, async () => (VolumeList)await ListAllAsync(), askTimeout, commandTimeout);
        attachments ??= new VolumeAttachments();
        var lifecycle = new VolumeLifecycle(Context.System, store, async () => (VolumeList)await ListAllAsync(), volumes, placement, attachments, askTimeout);

        Receive<GetHostAddress>(_ => Sender.Tell(OwnAddress()));
        Receive<CreateVolume>(Answer<CreateVolume>(CreateAsync));
        // `ls` lists the volumes that are not in the trash (`trash ls` lists those).
        Receive<ListVolumes>(Answer<ListVolumes>(_ => ListAsync(inTrash: false)));
        Receive<ListVolumePage>(Answer<ListVolumePage>(PageAsync));
        Receive<LocateVolume>(Answer<LocateVolume>(l => LocateAsync(l.VolumeId)));
        Receive<GetVolume>(Answer<GetVolume>(GetAsync));
        Receive<BranchVolume>(Answer<BranchVolume>(BranchAsync));
        Receive<DiffVersions>(Answer<DiffVersions>(DiffAsync));
        Receive<ShowCluster>(Answer<ShowCluster>(ShowClusterAsync));
        Receive<ClusterCommand>(c => Sender.Tell(RunClusterCommand(c)));
        Receive<ShardingCommand>(Answer<ShardingCommand>(ShardingAsync));
        Receive<ScrubVolumes>(Answer<ScrubVolumes>(s => s.Volume is null
            ? integrity.ScrubAsync(s)
            : WithVolume(s.Volume, v => integrity.ScrubAsync(s with { Volume = v.Id }))));
        Receive<VerifyVolume>(Answer<VerifyVolume>(c => WithVolume(c.Volume, v => integrity.VerifyAsync(c with { Volume = v.Id }))));
        Receive<RemoveVolume>(Answer<RemoveVolume>(lifecycle.RemoveAsync));
        Receive<RestoreVolume>(Answer<RestoreVolume>(lifecycle.RestoreAsync));
        Receive<ResizeVolume>(Answer<ResizeVolume>(lifecycle.ResizeAsync));
        Receive<ProtectVersion>(Answer<ProtectVersion>(async p =>
            Id160.TryParse(p.Version, out var v) && await PassOnAsync(v, p.HereOnly, p with { HereOnly = true }) is { } answer
                ? answer
                : await lifecycle.ProtectAsync(p)));
        Receive<ListTrash>(Answer<ListTrash>(_ => ListAsync(inTrash: true)));
        Receive<PurgeTrash>(Answer<PurgeTrash>(lifecycle.PurgeAsync));
        Receive<CanBranch>(c => Sender.Tell(new BranchAnswer(Id160.TryParse(c.Version, out var v) && _store.CanBranchFrom(v))));
        Receive<CountAttachments>(c => Sender.Tell(new AttachmentCount(c.Volume,
            Id160.TryParse(c.Volume, out var id) ? attachments.ReadWrite(id) : 0)));
        Receive<IManagementMessage>(m => Sender.Tell(new CommandFailed($"the management actor does not answer {m.GetType().Name}")));
    }

    // Slow answers run beside the actor (it keeps answering, e.g. another node's GetHostAddress), and any
    // exception becomes a CommandFailed with one clear sentence: the CLI never waits for a timeout.
    private Action<T> Answer<T>(Func<T, Task<IManagementMessage>> handler) => message =>
    {
        var replyTo = Sender;
        _ = Run();

        async Task Run()
        {
            try
            {
                replyTo.Tell(await handler(message).ConfigureAwait(false));
            }
            catch (Exception e)
            {
                var error = e is AggregateException { InnerException: { } inner } ? inner : e;
                // What was asked for does not exist or cannot be (an operator's typo, a compacted version): the caller
                // is told why, and the node's log says so at info, not as a warning about the node.
                if (IsRefusalOfTheRequest(error)) _log.Info("management request {0} refused: {1}", typeof(T).Name, error.Message);
                else _log.Warning("management request {0} failed: {1}", typeof(T).Name, error.Message);
                replyTo.Tell(new CommandFailed(error.Message));
            }
        }
    };

    private static bool IsRefusalOfTheRequest(Exception e) =>
        e is VolumeNotFoundException or UnknownVersionException or VersionCompactedException or VolumeInTrashException
            or InvalidRangeException;

    private HostAddress OwnAddress() => new(_hostId.ToString(), _cluster.SelfAddress.ToString());

    /// <summary>Members that can take a replica: Up and reachable.</summary>
    private IReadOnlyList<Member> LiveHosts() => _cluster.State.Members
        .Where(m => m.Status == MemberStatus.Up && !_cluster.State.Unreachable.Contains(m))
        .ToArray();

    /// <summary>Runs <paramref name="handler"/> with the volume <paramref name="volume"/> names (an id or a name).</summary>
    private async Task<IManagementMessage> WithVolume(string volume, Func<VolumeSummary, Task<IManagementMessage>> handler) =>
        await LocateAsync(volume) is VolumeLocation { Volume: { } v } ? await handler(v) : VolumeResolver.Missing(volume);

    private async Task<IManagementMessage> CreateAsync(CreateVolume c)
    {
        if (c.Name is not null)
        {
            if (VolumeName.Check(c.Name) is { } badName) return new CommandFailed(badName);
            // One lookup (placement's name index); placement checks again against creates under way.
            if (await LocateAsync(c.Name) is VolumeLocation { Volume: { } taken })
                return new CommandFailed($"the name '{c.Name}' is taken by volume {taken.Id}{(taken.IsTrashed ? " (in the trash)" : "")}");
        }
        if (c.Replicas < 1) return new CommandFailed($"a volume needs at least 1 replica, not {c.Replicas}");
        if (c.SizeBytes <= 0 || c.SizeBytes % LogStore.BlockSize != 0)
            return new CommandFailed($"a volume size must be a positive multiple of {LogStore.BlockSize} bytes, not {c.SizeBytes}");
        if (_placement is not null)
        {
            // Placement chooses the hosts, prepares each, commits on the primary, and waits for the replicas. It alone
            // counts the hosts: this node's view of the members may lag a join that placement waits for.
            try { return await _placement.Ask<IManagementMessage>(new PlaceVolume(c.Replicas, c.SizeBytes, c.Mode, c.Name), _askTimeout * 8); }
            catch (AskTimeoutException) { return new CommandFailed("the placement service did not answer; no volume may have been created, check with `cloudfs ls`"); }
        }
        var hosts = LiveHosts().Count;
        if (c.Replicas > hosts) return new CommandFailed($"only {hosts} host(s) found");
        if (c.Replicas > 1) return new CommandFailed($"volumes with {c.Replicas} replicas need the placement service, which this node does not run");
        var info = await _store.CreateVolumeAsync(c.SizeBytes, c.Mode, [_hostId], name: c.Name);
        _log.Info("created volume {0} ({1} bytes, {2})", info.BaseId, info.SizeBytes, ManagementFormat.Mode(info.Mode));
        return new VolumeCreated(info.BaseId.ToString(), [OwnAddress()]);
    }

    private async Task<IManagementMessage> BranchAsync(BranchVolume b)
    {
        if (!Id160.TryParse(b.Version, out var version))
        {
            // A volume name: that volume's current version.
            if (await LocateAsync(b.Version) is not VolumeLocation { Volume: { } named })
                return new CommandFailed($"'{b.Version}' is not a volume or version id (40 hex characters), nor a volume's name");
            version = Id160.Parse(named.Id);
        }
        // A volume id names the volume (SPEC.md): its current version here, not the empty version it was created as.
        if (_store.GetVolume(version) is { } volume) version = volume.CurrentVersion;
        // Not held here: a node that holds it makes the branch (and is its primary), as if it had been asked.
        else if (await PassOnAsync(version, b.HereOnly, new BranchVolume(version.ToString(), HereOnly: true)) is { } answer) return answer;
        VolumeInfo info;
        try { info = await _store.BranchAsync(version); }
        catch (UnknownVersionException) when (!b.HereOnly) { return new CommandFailed($"version {version} is held by no live member of the cluster"); }
        return new VolumeCreated(info.BaseId.ToString(), [OwnAddress()]);
    }

    /// <summary>A request about <paramref name="version"/> this node cannot answer (it does not hold the version, or no
    /// longer its history) is passed to a node that can (<see cref="BrancherOfAsync"/>) as <paramref name="there"/>
    /// (marked HereOnly: it is not passed on again), and its answer is the answer. Null: this node answers (it can, it
    /// was asked by another node, or no node can: its own refusal then says why).</summary>
    private async Task<IManagementMessage?> PassOnAsync(Id160 version, bool hereOnly, IManagementMessage there) =>
        hereOnly || _store.CanBranchFrom(version) || await BrancherOfAsync(version) is not { } other
            ? null
            : await other.Ask<IManagementMessage>(there, _askTimeout * 2);

    /// <summary>The management actor of a node that can branch <paramref name="version"/>: a volume's primary when it
    /// is a volume id, else the first live member that says it holds the version; null when none does (this node's
    /// own refusal then says why).</summary>
    private async Task<ICanTell?> BrancherOfAsync(Id160 version)
    {
        if (await LocateAsync(version.ToString()) is VolumeLocation { PrimaryAddress: { } primary } && primary != _cluster.SelfAddress.ToString())
            return _system.ActorSelection(primary + Path);
        var others = LiveHosts().Where(m => m.Address != _cluster.SelfAddress)
            .Select(m => _system.ActorSelection(new RootActorPath(m.Address) / "user" / Name)).ToArray();
        var asks = others.Select(async other =>
        {
            try { return (await other.Ask<BranchAnswer>(new CanBranch(version.ToString()), _askTimeout).ConfigureAwait(false)).Can ? other : null; }
            catch (AskTimeoutException) { return null; }
        }).ToList();
        while (asks.Count > 0)
        {
            var done = await Task.WhenAny(asks).ConfigureAwait(false);
            asks.Remove(done);
            if (await done.ConfigureAwait(false) is { } holder) return holder;
        }
        return null;
    }

    /// <summary>The ranges changed between two versions, from this node's log (it must hold the volume and the
    /// history between them).</summary>
    private async Task<IManagementMessage> DiffAsync(DiffVersions d)
    {
        if (!Id160.TryParse(d.From, out var from)) return new CommandFailed($"'{d.From}' is not a version id (40 hex characters)");
        Id160? to = null;
        if (d.To is not null)
        {
            if (!Id160.TryParse(d.To, out var t)) return new CommandFailed($"'{d.To}' is not a version id (40 hex characters)");
            to = t;
        }
        if (!Id160.TryParse(d.Volume, out var volume))
        {
            if (await LocateAsync(d.Volume) is not VolumeLocation { Volume: { } named }) return VolumeResolver.Missing(d.Volume);
            volume = Id160.Parse(named.Id);
        }
        var diff = await _store.Streams.ChangedBetweenAsync(volume, from, to);
        return new VersionDiff(diff.From.ToString(), diff.To.ToString(), diff.Ranges.Select(r => new DiffRange(r.Offset, r.Length)).ToArray(), diff.Bytes,
            diff.FromSizeBytes, diff.ToSizeBytes);
    }

    /// <summary>Every volume of the cluster, those in the trash too: for the callers that need them all at once in
    /// this process (integrity checks, the trash's commands).</summary>
    private async Task<IManagementMessage> ListAllAsync()
    {
        var first = await ListAsync(inTrash: false);
        if (first is not VolumeList listed) return first;
        var second = await ListAsync(inTrash: true);
        return second is VolumeList trash ? listed with { Volumes = [.. listed.Volumes, .. trash.Volumes] } : second;
    }

    /// <summary>The cluster's volumes not in the trash (or only those in it), gathered page by page (each page one
    /// bounded message from placement).</summary>
    private async Task<IManagementMessage> ListAsync(bool inTrash)
    {
        var volumes = new List<VolumeSummary>();
        string? after = null;
        while (true)
        {
            var page = await PageAsync(new ListVolumePage(after, ListVolumePage.MaxLimit, InTrash: inTrash));
            if (page is not VolumePage p) return page;
            volumes.AddRange(p.Volumes);
            if (p.Next is null) return new VolumeList(volumes, p.FailedHosts);
            after = p.Next;
        }
    }

    /// <summary>A page of the cluster's volumes from placement; of this node's own when it cannot answer.</summary>
    private async Task<IManagementMessage> PageAsync(ListVolumePage request)
    {
        if (_placement is not null)
        {
            try { return await _placement.Ask<VolumePage>(request, _askTimeout); }
            catch (AskTimeoutException) { _log.Warning("the placement service did not answer; listing this node's volumes only"); }
        }
        var local = _store.ListVolumes().Select(Summarize).ToDictionary(v => v.Id);
        var limit = Math.Clamp(request.Limit, 1, ListVolumePage.MaxLimit);
        var (ids, next) = Replication.VolumePaging.Page(local.Keys.Order(StringComparer.Ordinal).ToArray(), request.After, limit, int.MaxValue,
            id => local[id].IsTrashed == request.InTrash && (!request.UnhealthyOnly || local[id].Health != VolumeHealth.Healthy));
        return new VolumePage(ids.Select(id => local[id]).ToArray(), next, []);
    }

    /// <summary>The volume's replica set and primary from placement's table (one lookup, not a listing); this node's own
    /// view when placement cannot answer.</summary>
    /// <param name="volumeId">An id or a volume's name.</param>
    private async Task<IManagementMessage> LocateAsync(string volumeId)
    {
        if (_placement is not null)
        {
            // A volume this node made by itself (a branch, an import) is placement's to know from its next round.
            try
            {
                var located = await _placement.Ask<VolumeLocation>(new LocateVolume(volumeId), _askTimeout);
                if (located.Volume is not null) return located;
            }
            catch (AskTimeoutException) { _log.Warning("the placement service did not answer; looking the volume up on this node only"); }
        }
        var here = Id160.TryParse(volumeId, out var id) ? _store.GetVolume(id) : _store.ListVolumes().FirstOrDefault(v => v.Name == volumeId);
        return here is { } info
            ? new VolumeLocation(Summarize(info), info.IsWritable ? _cluster.SelfAddress.ToString() : null)
            : new VolumeLocation(null, null);
    }

    /// <summary>The volume as placement knows it, with its current version from its primary (placement's version is
    /// that of its last round; `cloudfs info` right after a write shows that write).</summary>
    private async Task<IManagementMessage> GetAsync(GetVolume g)
    {
        if (await LocateAsync(g.VolumeId) is not VolumeLocation { Volume: { } found } location)
            return VolumeResolver.Missing(g.VolumeId);
        if (_store.GetVolume(Id160.Parse(found.Id)) is { IsWritable: true } here) return found with { Version = here.CurrentVersion.ToString() };
        if (location.PrimaryAddress is not { } primary || primary == _cluster.SelfAddress.ToString()) return found;
        try
        {
            var agent = _system.ActorSelection(primary + HostAgent.Path);
            return await agent.Ask<object>(new AwaitVolume(found.Id, 0), _askTimeout) is VolumeHeld held ? found with { Version = held.Volume.Version } : found;
        }
        catch (AskTimeoutException)
        {
            return found;
        }
    }

    private VolumeSummary Summarize(VolumeInfo v) => new(
        v.BaseId.ToString(), v.SizeBytes, v.Mode,
        v.IsWritable ? _hostId.ToString() : null,
        v.Replicas.Count == 0 ? [_hostId.ToString()] : v.Replicas.Select(r => r.ToString()).ToArray(),
        v.CurrentVersion.ToString(),
        v.Name, VolumeHealth.OfLocal(HostAgent.ToReport(v)), v.BranchedFrom?.ToString(), v.TrashedAt?.ToUnixTimeMilliseconds() ?? 0);

    private async Task<IManagementMessage> ShowClusterAsync(ShowCluster _)
    {
        var state = _cluster.State;
        var lines = await Task.WhenAll(state.Members.OrderBy(m => m.Address.ToString(), StringComparer.Ordinal).Select(async m =>
        {
            var reachable = !state.Unreachable.Contains(m);
            return new MemberLine(m.Address.ToString(), m.Roles.OrderBy(r => r, StringComparer.Ordinal).ToArray(),
                m.Status.ToString(), reachable ? "Reachable" : "Unreachable",
                m.Roles.FirstOrDefault(r => r.StartsWith(CloudFsConfig.HostRolePrefix, StringComparison.Ordinal)) is { } role
                    ? role[CloudFsConfig.HostRolePrefix.Length..]
                    : reachable ? await HostIdOf(m.Address) : "-");
        }));
        return new ClusterMembers(lines, state.Leader?.ToString(), _cluster.SelfAddress.ToString());
    }

    // Host ids are a cluster-wide registry kept by the management actors themselves: each one knows its own.
    private async Task<string> HostIdOf(Address member)
    {
        if (member == _cluster.SelfAddress) return _hostId.ToString();
        try
        {
            var other = _system.ActorSelection(new RootActorPath(member) / "user" / Name);
            return (await other.Ask<HostAddress>(GetHostAddress.Instance, _askTimeout)).HostId;
        }
        catch (Exception)
        {
            return "-";
        }
    }

    /// <summary>The JSON form of a command's answer: indented, as the CLI's other --json output.</summary>
    private static readonly JsonSerializerOptions JsonLines = new() { WriteIndented = true };

    private IManagementMessage RunClusterCommand(ClusterCommand c)
    {
        var state = _cluster.State;
        switch (c.Verb)
        {
            case "leader":
                return new CommandOutput((state.Leader?.ToString() ?? "no leader") + "\n",
                    new JsonObject { ["leader"] = state.Leader?.ToString() }.ToJsonString(JsonLines));
            case "status":
                return new CommandOutput($"{_cluster.SelfAddress} {_cluster.SelfMember.Status}\n",
                    new JsonObject { ["address"] = _cluster.SelfAddress.ToString(), ["status"] = _cluster.SelfMember.Status.ToString() }.ToJsonString(JsonLines));
            case "down-unreachable":
                var unreachable = state.Unreachable.Select(m => m.Address).ToArray();
                foreach (var a in unreachable) _cluster.Down(a);
                return new CommandOutput(unreachable.Length == 0
                    ? "no unreachable members\n"
                    : string.Concat(unreachable.Select(a => $"downed {a}\n")));
            case "join" or "leave" or "down":
                if (string.IsNullOrWhiteSpace(c.Address)) return new CommandFailed($"cluster {c.Verb} needs an address");
                Address address;
                try { address = ParseAddress(c.Address, _cluster.SelfAddress.Protocol); }
                catch (Exception e) { return new CommandFailed($"'{c.Address}' is not a node address: {e.Message}"); }
                if (c.Verb == "join") _cluster.Join(address);
                else if (c.Verb == "leave") _cluster.Leave(address);
                else _cluster.Down(address);
                return new CommandOutput($"{c.Verb} {address}\n");
            default:
                return new CommandFailed($"unknown cluster command '{c.Verb}' (leader, status, down-unreachable, join, leave, down)");
        }
    }

    /// <summary>A full akka address, or "IP[:PORT]" of a cloudfs node of a cluster whose addresses have <paramref name="protocol"/>
    /// (akka.tcp, or akka.ssl.tcp with remoting TLS).</summary>
    public static Address ParseAddress(string text, string protocol) =>
        Address.Parse(text.Contains("://", StringComparison.Ordinal) ? text : CloudFsConfig.SeedAddress(text, protocol == RemotingTls.TlsScheme));

    private async Task<IManagementMessage> ShardingAsync(ShardingCommand c)
    {
        var sharding = ClusterSharding.Get(_system);
        var types = sharding.ShardTypeNames.OrderBy(t => t, StringComparer.Ordinal).ToArray();
        switch (c.Verb)
        {
            case "regions":
            {
                var text = new System.Text.StringBuilder();
                var json = new JsonArray();
                foreach (var type in types)
                {
                    var regions = await sharding.ShardRegion(type).Ask<CurrentRegions>(GetCurrentRegions.Instance, _askTimeout);
                    foreach (var a in regions.Regions.OrderBy(a => a.ToString(), StringComparer.Ordinal))
                    {
                        text.Append(type).Append(' ').Append(a).Append('\n');
                        json.Add(new JsonObject { ["type"] = type, ["address"] = a.ToString() });
                    }
                }
                return new CommandOutput(text.Length == 0 ? "no shard regions\n" : text.ToString(), json.ToJsonString(JsonLines));
            }
            case "stats":
            {
                var text = new System.Text.StringBuilder();
                var json = new JsonArray();
                foreach (var type in types)
                {
                    var stats = await sharding.ShardRegion(type).Ask<ClusterShardingStats>(new GetClusterShardingStats(_askTimeout), _askTimeout + _askTimeout);
                    foreach (var (address, region) in stats.Regions.OrderBy(r => r.Key.ToString(), StringComparer.Ordinal))
                    {
                        text.Append(type).Append(' ').Append(address).Append(": ").Append(region.Stats.Count).Append(" shard(s), ")
                            .Append(region.Stats.Values.Sum()).Append(" entit(y/ies)\n");
                        var shards = new JsonArray();
                        foreach (var (shard, entities) in region.Stats.OrderBy(s => s.Key, StringComparer.Ordinal))
                        {
                            text.Append("  ").Append(shard).Append(' ').Append(entities).Append('\n');
                            shards.Add(new JsonObject { ["shard"] = shard, ["entities"] = entities });
                        }
                        json.Add(new JsonObject { ["type"] = type, ["address"] = address.ToString(), ["shards"] = shards, ["entities"] = region.Stats.Values.Sum() });
                    }
                }
                return new CommandOutput(text.Length == 0 ? "no shard regions\n" : text.ToString(), json.ToJsonString(JsonLines));
            }
            default:
                return new CommandFailed($"unknown sharding command '{c.Verb}' (regions, stats)");
        }
    }
}
