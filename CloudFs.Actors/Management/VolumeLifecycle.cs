// `cloudfs rm`, `trash ls | restore | purge` and `resize` as the management actor runs them. Trash, Restore and Resize
// are entries the volume's primary appends (its VolumeActor, reached through the shard region in an envelope naming
// the primary, between writes), so
// every replica takes them in chain order; a purge asks placement, which has every host holding the volume drop it.
using Akka.Actor;
using Akka.Cluster;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Management;

/// <param name="list">Every volume of the cluster, those in the trash too (placement's view, or this node's).</param>
/// <param name="volumes">The volumes' shard region; null: this node's store is the only writer (tests without sharding).</param>
/// <param name="placement">The placement singleton's proxy; null: purges only this node's copy.</param>
/// <param name="attachments">This node's read-write NBD attachments (the other nodes are asked for theirs).</param>
internal sealed class VolumeLifecycle(ActorSystem system, LogStore store, Func<Task<VolumeList>> list, IActorRef? volumes, IActorRef? placement,
    VolumeAttachments attachments, TimeSpan askTimeout)
{
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(system);
    private readonly VolumeRoutes _routes = new(store, placement, askTimeout);

    public async Task<IManagementMessage> RemoveAsync(RemoveVolume r)
    {
        var found = await FindAsync(r.Volume).ConfigureAwait(false);
        if (found is not VolumeSummary v) return found;
        if (v.IsTrashed) return new CommandFailed($"volume {v.Id} is in the trash already (`cloudfs trash ls`)");
        if (!r.Force && await AttachedAsync(v.Id).ConfigureAwait(false) is { } attached) return new CommandFailed(attached);
        return await ChangeAsync(v, new ChangeLifecycle(Id160.Parse(v.Id), LifecycleChange.Trash)).ConfigureAwait(false);
    }

    public async Task<IManagementMessage> RestoreAsync(RestoreVolume r)
    {
        var found = await FindAsync(r.Volume).ConfigureAwait(false);
        if (found is not VolumeSummary v) return found;
        if (!v.IsTrashed) return new CommandFailed($"volume {v.Id} is not in the trash");
        return await ChangeAsync(v, new ChangeLifecycle(Id160.Parse(v.Id), LifecycleChange.Restore)).ConfigureAwait(false);
    }

    public async Task<IManagementMessage> ResizeAsync(ResizeVolume r)
    {
        var found = await FindAsync(r.Volume).ConfigureAwait(false);
        if (found is not VolumeSummary v) return found;
        if (r.SizeBytes <= 0 || r.SizeBytes % LogStore.BlockSize != 0)
            return new CommandFailed($"a volume size must be a positive multiple of {LogStore.BlockSize} bytes, not {r.SizeBytes}");
        if (v.IsTrashed) return new CommandFailed($"volume {v.Id} is in the trash; restore it before resizing it");
        if (r.SizeBytes < v.Size && !r.AllowShrink)
            return new CommandFailed($"volume {v.Id} has {v.Size} bytes; shrinking it to {r.SizeBytes} drops the data beyond that and needs --allow-shrink");
        if (r.SizeBytes == v.Size) return v;
        return await ChangeAsync(v, new ChangeLifecycle(Id160.Parse(v.Id), LifecycleChange.Resize, r.SizeBytes, r.AllowShrink)).ConfigureAwait(false);
    }

    /// <summary>`protect` / `unprotect`: the volume whose chain holds the version, from this node's log; its primary
    /// appends the Protect entry (and refuses a version no longer available, or unprotecting one not protected).</summary>
    public async Task<IManagementMessage> ProtectAsync(ProtectVersion p)
    {
        if (!Id160.TryParse(p.Version, out var version)) return new CommandFailed($"'{p.Version}' is not a version id (40 hex characters)");
        Id160 volume;
        try { volume = store.VolumeOfVersion(version); }
        catch (UnknownVersionException)
        {
            return new CommandFailed($"version {version} is not a version of any volume this node holds; nothing was changed");
        }
        var found = await FindAsync(volume.ToString()).ConfigureAwait(false);
        if (found is not VolumeSummary v) return found;
        return await ChangeAsync(v, new ChangeProtection(volume, version, p.Protect)).ConfigureAwait(false);
    }

    public async Task<IManagementMessage> PurgeAsync(PurgeTrash p)
    {
        VolumeSummary[] targets;
        if (p.Volume is null) targets = (await list().ConfigureAwait(false)).Volumes.Where(v => v.IsTrashed).ToArray();
        else
        {
            var found = await FindAsync(p.Volume).ConfigureAwait(false);
            if (found is not VolumeSummary one) return found;
            if (!one.IsTrashed) return new CommandFailed($"volume {one.Id} is not in the trash; `cloudfs rm` moves it there first");
            targets = [one];
        }
        var purged = new List<VolumeSummary>();
        var failures = new List<string>();
        foreach (var v in targets)
        {
            if (await PurgeOneAsync(v).ConfigureAwait(false) is { } error) failures.Add(error);
            else purged.Add(v);
        }
        if (failures.Count == 0) return new VolumeList(purged);
        var done = purged.Count == 0 ? "" : $" (purged: {string.Join(", ", purged.Select(v => v.Id))})";
        return new CommandFailed(string.Join("; ", failures) + done);
    }

    private async Task<string?> PurgeOneAsync(VolumeSummary v)
    {
        if (placement is null)
        {
            await store.PurgeVolumeAsync(Id160.Parse(v.Id)).ConfigureAwait(false);
            return null;
        }
        PurgeDone done;
        try { done = await placement.Ask<PurgeDone>(new PurgeVolume(v.Id), askTimeout * 8).ConfigureAwait(false); }
        catch (AskTimeoutException) { return $"volume {v.Id}: the placement service did not answer; check with `cloudfs trash ls`"; }
        return done.Error is null ? null : $"volume {v.Id}: {done.Error}";
    }

    /// <summary>The volume <paramref name="text"/> names (an id or a name, in the trash too), or a CommandFailed.</summary>
    private async Task<IManagementMessage> FindAsync(string text) => VolumeResolver.Resolve(await list().ConfigureAwait(false), text);

    /// <summary>Null when no member serves a read-write attachment of the volume; otherwise why rm is refused.</summary>
    private async Task<string?> AttachedAsync(string volume)
    {
        var id = Id160.Parse(volume);
        var members = _cluster.State.Members.Where(m => m.Status == MemberStatus.Up && !_cluster.State.Unreachable.Contains(m)).ToArray();
        var answers = await Task.WhenAll(members.Select(async m =>
        {
            if (m.Address == _cluster.SelfAddress) return (m.Address, Count: (int?)attachments.ReadWrite(id));
            try
            {
                var other = system.ActorSelection(new RootActorPath(m.Address) / "user" / ManagementActor.Name);
                return (m.Address, Count: (await other.Ask<AttachmentCount>(new CountAttachments(volume), askTimeout).ConfigureAwait(false)).ReadWrite);
            }
            catch (Exception) { return (m.Address, Count: null); }
        })).ConfigureAwait(false);
        var busy = answers.Where(a => a.Count > 0).ToArray();
        if (busy.Length > 0)
            return $"volume {volume} is attached read-write ({busy[0].Count} NBD connection(s) at {busy[0].Address}); detach it first, or rm --force";
        var silent = answers.Where(a => a.Count is null).ToArray();
        if (silent.Length > 0)
            return $"member {silent[0].Address} did not say whether it serves volume {volume}; rm --force removes it anyway";
        return null;
    }

    /// <summary>Has the volume's primary append the entry; answers the volume as the cluster then lists it.</summary>
    private async Task<IManagementMessage> ChangeAsync(VolumeSummary v, IHeadChange change)
    {
        if (volumes is null) await change.ApplyAsync(store, null).ConfigureAwait(false);
        else
        {
            // To the primary's actor; right after a failover the primary may still be moving: asked again until the deadline.
            var volume = Id160.Parse(v.Id);
            var deadline = DateTime.UtcNow + askTimeout * 4;
            while (true)
            {
                if (await _routes.PrimaryAsync(volume).ConfigureAwait(false) is not { } host)
                {
                    if (DateTime.UtcNow >= deadline) return new CommandFailed($"volume {v.Id}: no primary to change it; check with `cloudfs ls`");
                    await Task.Delay(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
                    continue;
                }
                object reply;
                try { reply = await volumes.Ask<object>(new VolumeEnvelope(host, change), askTimeout * 2).ConfigureAwait(false); }
                catch (AskTimeoutException) { return new CommandFailed($"volume {v.Id}: its primary did not answer; check with `cloudfs ls` and `cloudfs trash ls`"); }
                if (reply is VolumeAck) break;
                var failure = reply as VolumeFailure;
                if (failure?.Kind is VolumeErrorKind.NotPrimary or VolumeErrorKind.VolumeNotFound && DateTime.UtcNow < deadline)
                {
                    _routes.Forget(volume, host);
                    await Task.Delay(TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
                    continue;
                }
                return new CommandFailed(failure?.Message ?? $"volume {v.Id}: unexpected answer {reply.GetType().Name}");
            }
        }
        return await FindAsync(v.Id).ConfigureAwait(false);
    }
}
