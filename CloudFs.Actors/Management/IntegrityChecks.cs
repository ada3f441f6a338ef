// `cloudfs scrub` and `cloudfs verify` as the management actor runs them: each asks the integrity agents of the hosts
// concerned (every live host, or the volume's replica hosts) and puts their answers together.
using Akka.Actor;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Management;

/// <param name="list">Every volume of the cluster (placement's view).</param>
/// <param name="askTimeout">For quick questions (heads, versions) and how long a replica may take to reach a version.</param>
/// <param name="commandTimeout">For a host's whole scrub or digest, which reads its copies from the device.</param>
internal sealed class IntegrityChecks(ActorSystem system, Func<Task<VolumeList>> list, TimeSpan askTimeout, TimeSpan commandTimeout)
{
    /// <summary>Digest comparisons that found the replicas at different versions (writes going on) are tried this often.</summary>
    private const int DeepAttempts = 5;

    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(system);

    private ActorSelection Integrity(Address host) => system.ActorSelection(host + IntegrityAgent.Path);
    private ActorSelection Agent(Address host) => system.ActorSelection(host + HostAgent.Path);

    private async Task<VolumeSummary> FindAsync(string volume)
    {
        var id = volume.ToLowerInvariant();
        var all = await list().ConfigureAwait(false);
        return all.Volumes.FirstOrDefault(v => v.Id == id) ?? throw new CloudFsException($"no volume {volume} on this cluster");
    }

    public async Task<IManagementMessage> ScrubAsync(ScrubVolumes s)
    {
        var live = HostDirectory.Live(_cluster);
        IReadOnlyList<string> hosts = s.Volume is null
            ? live.Keys.OrderBy(h => h, StringComparer.Ordinal).ToArray()
            : (await FindAsync(s.Volume).ConfigureAwait(false)).Replicas;
        var volume = s.Volume?.ToLowerInvariant();
        var answers = await Task.WhenAll(hosts.Select(async host =>
        {
            if (!live.TryGetValue(host, out var address)) return (host, (object)new ControlFailed("the host is not reachable; its copy was not scrubbed"));
            try { return (host, await Integrity(address).Ask<object>(new ScrubHost(volume), commandTimeout).ConfigureAwait(false)); }
            catch (AskTimeoutException) { return (host, new ControlFailed($"no answer within {commandTimeout}")); }
        })).ConfigureAwait(false);
        var lines = new List<ScrubHostLine>();
        var ranges = new List<ScrubRangeLine>();
        long leftOut = 0;
        foreach (var (host, answer) in answers)
        {
            if (answer is HostScrubbed h)
            {
                leftOut += h.RangesLeftOut;
                lines.Add(new ScrubHostLine(host, h.BytesVerified, h.BadBlocks, h.Seconds, null));
                ranges.AddRange(h.Ranges.Select(r => new ScrubRangeLine(r.Volume, host, r.Offset, r.Length, r.Repaired ? "repaired" : "damaged", r.Reason)));
            }
            else lines.Add(new ScrubHostLine(host, 0, 0, 0, (answer as ControlFailed)?.Reason ?? $"unexpected answer {answer.GetType().Name}"));
        }
        return new ScrubReport(lines.ToArray(), ranges.OrderBy(r => r.Volume, StringComparer.Ordinal).ThenBy(r => r.Offset).ThenBy(r => r.HostId, StringComparer.Ordinal).ToArray(), leftOut);
    }

    public async Task<IManagementMessage> VerifyAsync(VerifyVolume v)
    {
        var summary = await FindAsync(v.Volume).ConfigureAwait(false);
        var live = HostDirectory.Live(_cluster);
        var states = await Task.WhenAll(summary.Replicas.Select(async host =>
        {
            if (!live.TryGetValue(host, out var address)) return (host, (ReplicaState?)null);
            try { return (host, (ReplicaState?)await Integrity(address).Ask<ReplicaState>(new DescribeReplica(summary.Id), askTimeout).ConfigureAwait(false)); }
            catch (AskTimeoutException) { return (host, (ReplicaState?)null); }
        })).ConfigureAwait(false);
        var held = states.Where(x => x.Item2 is { Held: true }).Select(x => (Host: x.host, State: x.Item2!)).ToArray();
        // The primary's head is what the others are compared with; without one, the longest chain.
        var reference = held.FirstOrDefault(x => x.Host == summary.Primary);
        if (reference.State is null && held.Length > 0) reference = held.MaxBy(x => x.State.Lsn);
        var lines = new List<VerifyReplicaLine>();
        foreach (var (host, state) in states)
        {
            if (state is null) { lines.Add(new VerifyReplicaLine(host, 0, "-", "unreachable", false)); continue; }
            if (!state.Held) { lines.Add(new VerifyReplicaLine(host, 0, "-", "missing", false)); continue; }
            var status = await CompareAsync(summary.Id, (host, state), reference, live).ConfigureAwait(false);
            var equal = status == "equal";
            if (state.DamagedBytes > 0) { status += $", {state.DamagedBytes} bytes damaged"; equal = false; }
            lines.Add(new VerifyReplicaLine(host, state.Lsn, state.Version, status, equal));
        }
        var replicas = lines.ToArray();
        if (!v.Deep) return new VerifyReport(summary.Id, replicas, false, 0, null, 0, 0, [], null);
        return await DeepAsync(summary, replicas, held, live).ConfigureAwait(false);
    }

    /// <summary>How one replica's head stands against the reference's: equal, behind or ahead on one chain, or diverged.</summary>
    private async Task<string> CompareAsync(string volume, (string Host, ReplicaState State) replica, (string Host, ReplicaState State) reference,
        IReadOnlyDictionary<string, Address> live)
    {
        var (r, p) = (replica.State, reference.State);
        if (r.Lsn == p.Lsn) return r.Version == p.Version ? "equal" : "diverged";
        // The longer chain must hold the shorter one's head at its lsn.
        var (longer, shorter) = r.Lsn < p.Lsn ? (reference, replica) : (replica, reference);
        bool onChain;
        try
        {
            onChain = (await Agent(live[longer.Host]).Ask<VersionHeld>(new HoldsVersion(volume, shorter.State.Lsn, shorter.State.Version), askTimeout)
                .ConfigureAwait(false)).Held;
        }
        catch (AskTimeoutException) { return "unknown (no answer)"; }
        if (!onChain) return "diverged";
        var n = Math.Abs(p.Lsn - r.Lsn);
        return r.Lsn < p.Lsn ? $"behind by {n} entries" : $"ahead by {n} entries";
    }

    /// <summary>Digest ranges: at least 1 MiB, and at most 32,768 of them per volume (one answer stays well under 1 MiB).</summary>
    internal static long DigestRangeBytes(long size)
    {
        var range = 1L << 20;
        while ((size + range - 1) / range > 32768) range <<= 1;
        return range;
    }

    private async Task<IManagementMessage> DeepAsync(VolumeSummary summary, VerifyReplicaLine[] replicas, (string Host, ReplicaState State)[] held,
        IReadOnlyDictionary<string, Address> live)
    {
        var range = DigestRangeBytes(summary.Size);
        var count = (summary.Size + range - 1) / range;
        VerifyReport Report(long lsn, string? version, VerifyRangeLine[] diffs, string? note) =>
            new(summary.Id, replicas, true, lsn, version, range, count, diffs, note);
        if (held.Length == 0) return Report(0, null, [], "no replica host answered");
        // Compare at one version: ask every replica once it holds the newest head any of them has; if the heads still
        // differ (writes went on meanwhile), ask again at the newest head seen.
        var target = held.Max(x => x.State.Lsn);
        string? last = null;
        for (var attempt = 0; attempt < DeepAttempts; attempt++)
        {
            var answers = await Task.WhenAll(held.Select(async x =>
            {
                try { return (x.Host, await Integrity(live[x.Host]).Ask<object>(new DigestVolume(summary.Id, range, target, (long)askTimeout.TotalMilliseconds), commandTimeout + askTimeout).ConfigureAwait(false)); }
                catch (AskTimeoutException) { return (x.Host, (object)new ControlFailed("no answer")); }
            })).ConfigureAwait(false);
            var failed = answers.FirstOrDefault(a => a.Item2 is not VolumeDigested);
            if (failed.Host is not null) return Report(0, null, [], $"host {failed.Host} could not digest its copy: {(failed.Item2 as ControlFailed)?.Reason ?? failed.Item2.GetType().Name}");
            var digests = answers.Select(a => (a.Host, Digest: (VolumeDigested)a.Item2)).ToArray();
            if (digests.Select(d => (d.Digest.Lsn, d.Digest.Version)).Distinct().Count() == 1)
                return Report(digests[0].Digest.Lsn, digests[0].Digest.Version, Compare(digests, summary.Primary, range, summary.Size), null);
            target = digests.Max(d => d.Digest.Lsn);
            last = string.Join(", ", digests.Select(d => $"{d.Host} at lsn {d.Digest.Lsn}"));
        }
        return Report(0, null, [], $"the replicas did not hold one version long enough to compare them (is the volume being written?): {last}");
    }

    /// <summary>Per range, the hosts whose copy is not the majority's (a tie goes to the primary's side); runs of ranges
    /// with the same outliers are one line.</summary>
    internal static VerifyRangeLine[] Compare((string Host, VolumeDigested Digest)[] digests, string? primary, long range, long size)
    {
        var count = digests[0].Digest.Unreadable.Length;
        var lines = new List<VerifyRangeLine>();
        for (var i = 0; i < count; i++)
        {
            string Key(VolumeDigested d) => d.Unreadable[i] != 0 ? "unreadable" : Convert.ToHexString(d.Digests, i * VolumeDigest.DigestSize, VolumeDigest.DigestSize);
            var groups = digests.GroupBy(d => Key(d.Digest)).ToArray();
            if (groups.Length == 1 && groups[0].Key != "unreadable") continue;
            var majority = groups.Where(g => g.Key != "unreadable")
                .OrderByDescending(g => g.Count()).ThenByDescending(g => g.Any(d => d.Host == primary)).FirstOrDefault();
            var outliers = digests.Where(d => majority is null || Key(d.Digest) != majority.Key).Select(d => d.Host).Order(StringComparer.Ordinal).ToArray();
            var why = outliers.All(h => Key(digests.First(d => d.Host == h).Digest) == "unreadable") ? "unreadable there" : "different content";
            var offset = i * range;
            var length = Math.Min(range, size - offset);
            if (lines.Count > 0 && lines[^1] is var prev && prev.Offset + prev.Length == offset && prev.Why == why && prev.Hosts.SequenceEqual(outliers))
                lines[^1] = prev with { Length = prev.Length + length };
            else lines.Add(new VerifyRangeLine(offset, length, outliers, why));
        }
        return lines.ToArray();
    }
}
