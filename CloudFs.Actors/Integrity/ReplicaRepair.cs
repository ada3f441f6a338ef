// Repairing one host's bad blocks from the volume's other replicas: for each piece of a damaged range, plan what fails
// here (with this host's own checksums), ask another replica's integrity agent for its copy, and let the engine accept
// only what is the same version and matches those checksums (LogStore.PlanRepairAsync / ApplyRepairAsync); a block whose
// header is bad and named by no lsn only where a replica's copy confirms this host's own bytes, or a majority of the
// replicas agree (LogStore.ApplyAgreedRepairAsync). Entries
// recovery lost here (a header beyond correction) are fetched whole and accepted only if they fit this host's chain
// (EntryRestoration.ReadLostEntriesAsync / RestoreLostEntriesAsync); so is an entry whose header went bad after a checkpoint
// covered it (EntryRestoration.RestoreBadEntryAsync).
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Repair;

namespace CloudFs.Actors.Integrity;

/// <summary>Blocks restored, blocks whose replica copies were refused, the first reason a piece stayed damaged, and lost
/// entries restored.</summary>
public sealed record RepairReport(long Repaired, long Refused, string? Problem, long Restored = 0)
{
    public static readonly RepairReport None = new(0, 0, null);
    public RepairReport Add(RepairReport o) => new(Repaired + o.Repaired, Refused + o.Refused, Problem ?? o.Problem, Restored + o.Restored);
}

public sealed class ReplicaRepair(LogStore store, ActorSystem system, ReplicationCounters counters, TimeSpan askTimeout, ILoggingAdapter log)
{
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(system);
    // Repairs run one at a time: a read repeated by its gateway, or a scrub, meeting the block a repair is restoring
    // waits for it and then finds nothing left to do, instead of fetching and appending the same blocks twice.
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);

    /// <summary>
    /// Repairs every damaged range of <paramref name="volume"/> here that another replica can restore: first the entries
    /// recovery lost here (restored whole from a replica), then the bad blocks left.
    /// </summary>
    public async Task<RepairReport> RepairDamageAsync(Id160 volume, CancellationToken ct)
    {
        var report = RepairReport.None;
        if (store.GetVolume(volume) is not { IsDamaged: true }) return report;
        await _oneAtATime.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            report = await RestoreLostAloneAsync(volume, 0, long.MaxValue, ct).ConfigureAwait(false);
        }
        finally { _oneAtATime.Release(); }
        if (store.GetVolume(volume) is not { IsDamaged: true } info) return report;
        // What lost entries left damaged has no bad block to restore: only those entries' copies can.
        var lost = store.Restoration.LostEntries(volume).Select(l => l.Reason).ToHashSet();
        foreach (var d in info.Damage)
            if (!lost.Contains(d.Reason)) report = report.Add(await RepairRangeAsync(volume, d.Offset, d.Length, ct).ConfigureAwait(false));
        return report;
    }

    /// <summary>
    /// Restores what fails its checksum here in [offset, offset+length) of <paramref name="volume"/> from its other
    /// replicas (each asked in turn until every bad block is restored). Only stored ranges are read; holes cost nothing.
    /// </summary>
    public async Task<RepairReport> RepairRangeAsync(Id160 volume, long offset, long length, CancellationToken ct)
    {
        await _oneAtATime.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await RepairRangeAloneAsync(volume, offset, length, ct).ConfigureAwait(false);
        }
        finally { _oneAtATime.Release(); }
    }

    private async Task<RepairReport> RepairRangeAloneAsync(Id160 volume, long offset, long length, CancellationToken ct)
    {
        var info = store.GetVolume(volume);
        if (info is null) return new RepairReport(0, 0, $"volume {volume} is not held here");
        var others = info.Replicas.Where(h => h != store.HostId).Select(h => h.ToString()).ToArray();
        if (others.Length == 0) return new RepairReport(0, 0, $"volume {volume} has no other replica to repair from");
        var report = await RestoreLostAloneAsync(volume, offset, length, ct).ConfigureAwait(false);
        foreach (var allocated in store.Map(volume, offset, length))
        {
            if (!allocated.Allocated) continue;
            for (var at = allocated.Offset; at < allocated.Offset + allocated.Length; at += BlockRepair.MaxRepairBytes)
            {
                ct.ThrowIfCancellationRequested();
                var piece = Math.Min(BlockRepair.MaxRepairBytes, allocated.Offset + allocated.Length - at);
                report = report.Add(await RepairPieceAsync(volume, at, piece, others, ct).ConfigureAwait(false));
            }
        }
        return report;
    }

    /// <summary>
    /// Restores the runs of entries recovery lost here (their headers beyond correction) whose damage overlaps
    /// [offset, offset+length) of <paramref name="volume"/>: each from the first other replica whose copy of the whole
    /// run the engine accepts (it must fit this host's chain; EntryRestoration.RestoreLostEntriesAsync).
    /// </summary>
    private async Task<RepairReport> RestoreLostAloneAsync(Id160 volume, long offset, long length, CancellationToken ct)
    {
        var report = RepairReport.None;
        if (store.GetVolume(volume) is not { } info) return report;
        var others = info.Replicas.Where(h => h != store.HostId).Select(h => h.ToString()).ToArray();
        foreach (var run in store.Restoration.LostEntries(volume))
        {
            if (!info.Damage.Any(d => d.Reason == run.Reason && d.Offset < offset + length && d.End > offset)) continue;
            if (others.Length == 0) return report.Add(new RepairReport(0, 0, $"volume {volume} has no other replica to restore entries lsn {run.FirstLsn}..{run.LastLsn} from"));
            report = report.Add(await RestoreRunAsync(volume, run, others, ct).ConfigureAwait(false));
        }
        return report;
    }

    private Task<RepairReport> RestoreRunAsync(Id160 volume, LostEntryRun run, string[] others, CancellationToken ct) =>
        RestoreFromReplicasAsync(volume, run, others, $"entries lsn {run.FirstLsn}..{run.LastLsn}", "lost to corruption here",
            copy => store.Restoration.RestoreLostEntriesAsync(volume, run.FirstLsn, copy, ct), ct);

    /// <summary>
    /// Restores the blocks of an entry whose header went bad here after a checkpoint covered it: the whole entry of its lsn
    /// from the first other replica whose copy the engine accepts (it must fit this host's chain and store the blocks where
    /// this host's entry does; EntryRestoration.RestoreBadEntryAsync).
    /// </summary>
    private Task<RepairReport> RestoreBadEntryAsync(Id160 volume, BadEntry bad, string[] others, CancellationToken ct) =>
        RestoreFromReplicasAsync(volume, new LostEntryRun(bad.Lsn, bad.Lsn, bad.Range.Reason), others, $"entry lsn {bad.Lsn}",
            $"whose header at log block {bad.EntryBlock} is bad here", copy => store.Restoration.RestoreBadEntryAsync(volume, bad.EntryBlock, bad.Lsn, copy, ct), ct);

    /// <summary>
    /// Fetches the whole entries of <paramref name="run"/> from each other replica in turn and hands the copy to
    /// <paramref name="restore"/> (the engine judges it) until one is accepted; refusals are counted and logged, and the
    /// next replica is asked. <paramref name="what"/> names the entries, <paramref name="why"/> why they are asked for.
    /// </summary>
    private async Task<RepairReport> RestoreFromReplicasAsync(Id160 volume, LostEntryRun run, string[] others, string what, string why,
        Func<byte[], Task<RestoreOutcome>> restore, CancellationToken ct)
    {
        var report = RepairReport.None;
        var hosts = HostDirectory.Live(_cluster);
        foreach (var host in others)
        {
            if (!hosts.TryGetValue(host, out var address)) { report = report.Add(new RepairReport(0, 0, $"replica host {host} is not reachable")); continue; }
            var (copy, failure) = await FetchRunAsync(system.ActorSelection(address + IntegrityAgent.Path), host, volume, run, ct).ConfigureAwait(false);
            if (copy is null)
            {
                report = report.Add(new RepairReport(0, 0, failure));
                continue;
            }
            var outcome = await restore(copy).ConfigureAwait(false);
            counters.Restored(outcome.Entries, outcome.RefusedEntries);
            counters.Repaired(outcome.Blocks, 0);
            if (outcome.Refusal is not null)
            {
                log.Warning("volume {0}: replica host {1}'s copy of {2} ({3}) refused: {4}", volume, host, what, why, outcome.Refusal);
                report = report.Add(new RepairReport(0, 0, $"replica host {host}'s copy of {what} was refused: {outcome.Refusal}"));
                continue;
            }
            log.Info("volume {0}: {1}, {2}, restored from replica host {3} ({4} blocks)", volume, what, why, host, outcome.Blocks);
            return new RepairReport(outcome.Blocks, 0, null, outcome.Entries);
        }
        return report.Problem is null ? report : report with { Problem = $"no replica restored {what} ({why}): {report.Problem}" };
    }

    /// <summary>The whole run as one replica holds it, asked for in pieces of whole entries; or why it cannot send it.</summary>
    private async Task<(byte[]? Copy, string Failure)> FetchRunAsync(ActorSelection agent, string host, Id160 volume, LostEntryRun run, CancellationToken ct)
    {
        using var copy = new MemoryStream();
        for (var next = run.FirstLsn; next <= run.LastLsn;)
        {
            object reply;
            try
            {
                reply = await agent.Ask<object>(new ReadLostEntries(volume, next, run.LastLsn), askTimeout, ct).ConfigureAwait(false);
            }
            catch (AskTimeoutException) { return (null, $"replica host {host} did not answer within {askTimeout.TotalSeconds:0.#} s"); }
            if (reply is not LostEntriesCopy piece)
                return (null, $"replica host {host} cannot send entries lsn {next}..{run.LastLsn}: {(reply as ControlFailed)?.Reason ?? reply.GetType().Name}");
            var entries = EntryRestoration.EntriesIn(piece.Entries.Span);
            if (entries == 0) return (null, $"replica host {host} sent no whole entry for lsn {next}");
            if (copy.Length + piece.Entries.Length > EntryRestoration.MaxLostRunBytes)
                return (null, $"entries lsn {run.FirstLsn}..{run.LastLsn} take more than {EntryRestoration.MaxLostRunBytes} bytes");
            copy.Write(piece.Entries.Span);
            next += entries;
        }
        return (copy.ToArray(), "");
    }

    private async Task<RepairReport> RepairPieceAsync(Id160 volume, long offset, long length, string[] others, CancellationToken ct)
    {
        var plan = await store.Repair.PlanRepairAsync(volume, offset, length, ct).ConfigureAwait(false);
        var report = plan.Unrepairable.Count == 0
            ? RepairReport.None
            : new RepairReport(0, 0, $"bytes {plan.Unrepairable[0].Offset}..{plan.Unrepairable[0].End - 1} cannot be checked here: {plan.Unrepairable[0].Reason}");
        var hosts = HostDirectory.Live(_cluster);
        foreach (var bad in plan.BadEntries)
            report = report.Add(await RestoreBadEntryAsync(volume, bad, others, ct).ConfigureAwait(false));
        foreach (var host in others)
        {
            if (plan.Blocks.Count == 0) break;
            var (copy, failure) = await FetchCopyAsync(hosts, host, plan, ct).ConfigureAwait(false);
            if (copy is null)
            {
                report = report.Add(new RepairReport(0, 0, failure));
                continue;
            }
            var outcome = await store.Repair.ApplyRepairAsync(plan, copy, ct).ConfigureAwait(false);
            counters.Repaired(outcome.Repaired, outcome.Refused);
            if (outcome.Repaired > 0)
                log.Info("volume {0}: {1} block(s) of bytes {2}..{3} restored from replica host {4}", volume, outcome.Repaired,
                    plan.FetchOffset, plan.FetchOffset + plan.FetchLength - 1, host);
            if (outcome.Refused > 0)
                log.Warning("volume {0}: replica host {1}'s copy of {2} block(s) refused: {3}", volume, host, outcome.Refused, outcome.Refusal);
            report = report.Add(new RepairReport(outcome.Repaired, outcome.Refused, outcome.Refusal));
            // What is still bad is asked of the next replica.
            if (outcome.Refused > 0) plan = await store.Repair.PlanRepairAsync(volume, offset, length, ct).ConfigureAwait(false);
            else
            {
                plan = plan with { Blocks = [] };
                break;
            }
        }
        if (plan.Blocks.Any(b => b.Unchecked)) report = report.Add(await AgreeAsync(volume, plan, others, hosts, ct).ConfigureAwait(false));
        return report;
    }

    /// <summary>
    /// Blocks whose entry header is bad here and named by no lsn that no replica's copy confirmed (this host's own bytes
    /// are bad too): every other replica's copy of the range is fetched, and the engine takes a block where a majority
    /// of the replica set agree on it (LogStore.ApplyAgreedRepairAsync).
    /// </summary>
    private async Task<RepairReport> AgreeAsync(Id160 volume, RepairPlan plan, string[] others, IReadOnlyDictionary<string, Address> hosts, CancellationToken ct)
    {
        var copies = new List<ReplicaBlocks>();
        foreach (var host in others)
        {
            var (copy, failure) = await FetchCopyAsync(hosts, host, plan, ct).ConfigureAwait(false);
            if (copy is not null) copies.Add(copy);
            else log.Warning("volume {0}: {1}", volume, failure);
        }
        var outcome = await store.Repair.ApplyAgreedRepairAsync(plan, copies, ct).ConfigureAwait(false);
        counters.Repaired(outcome.Repaired, outcome.Refused);
        if (outcome.Repaired > 0)
            log.Info("volume {0}: {1} block(s) of bytes {2}..{3}, whose entry header is bad here, restored from the copies {4} replicas agree on",
                volume, outcome.Repaired, plan.FetchOffset, plan.FetchOffset + plan.FetchLength - 1, copies.Count);
        if (outcome.Refused > 0)
            log.Warning("volume {0}: {1} block(s) stay damaged: {2}", volume, outcome.Refused, outcome.Refusal);
        return new RepairReport(outcome.Repaired, outcome.Refused, outcome.Refusal);
    }

    /// <summary>One replica's verified copy of the plan's range (its integrity agent reads it), or why there is none.</summary>
    private async Task<(ReplicaBlocks? Copy, string Failure)> FetchCopyAsync(IReadOnlyDictionary<string, Address> hosts, string host, RepairPlan plan, CancellationToken ct)
    {
        if (!hosts.TryGetValue(host, out var address)) return (null, $"replica host {host} is not reachable");
        var agent = system.ActorSelection(address + IntegrityAgent.Path);
        object reply;
        try
        {
            reply = await agent.Ask<object>(new ReadForRepair(plan.Volume, plan.FetchOffset, plan.FetchLength, plan.HeadLsn, plan.HeadVersion), askTimeout, ct)
                .ConfigureAwait(false);
        }
        catch (AskTimeoutException) { return (null, $"replica host {host} did not answer within {askTimeout.TotalSeconds:0.#} s"); }
        return reply is ReplicaCopy copy
            ? (copy.ToBlocks(), "")
            : (null, $"replica host {host} cannot serve it: {(reply as ControlFailed)?.Reason ?? reply.GetType().Name}");
    }
}
