// Opening an existing log: load the newer valid checkpoint (or start at the first segment), then roll forward
// through the log applying every entry that verifies and follows its volume's chain.
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore : IReplaySink
{
    // Roll-forward only: spans of durable log skipped so far, and how many had been skipped when each volume's head
    // was applied (a volume may jump lsns only over a span skipped after its head).
    private int _replaySkips;
    private SkippedSpan _lastSkip;
    private readonly Dictionary<Id160, int> _headSkips = new();

    /// <summary>How the last open went (tests and benchmarks read it).</summary>
    internal (bool FromCheckpoint, ulong Generation, long EntriesReplayed, long BytesReplayed, string StopReason) LastRecovery { get; private set; }

    private void Recover()
    {
        var start = new WriterPosition(0, _layout.InitialSegmentSeq, _layout.SegmentOffset(0), _layout.InitialSegmentSeq + 1);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var cp = Checkpoints.LoadNewest();
        var tLoad = clock.Elapsed;
        if (cp is not null)
        {
            for (var i = 0; i < cp.States.Length; i++)
                _segments.Set(i, cp.States[i] is SegmentState.Reclaimed ? SegmentState.Free : cp.States[i], cp.Seqs[i]);
            foreach (var v in cp.Volumes)
            {
                var state = new VolumeState(v.BaseId, v.SizeBytes, v.Mode, v.Replicas, v.BranchedFrom, _keys.Get(v.BaseId), v.Index)
                {
                    Lsns = LsnTable.Restore(v.LsnBlocks, v.LsnPrefixes, v.Changes),
                    Protected = new SortedList<long, Id160>(v.Protected.ToDictionary(p => p.Lsn, p => p.Version)),
                    History = v.History,
                    OldestStreamableLsn = v.OldestStreamableLsn,
                    Committed = true,
                    ViewNumber = v.ViewNumber,
                    View = v.View ?? v.BaseId,
                    Name = v.Name,
                    TrashedAtUnixMs = v.TrashedAtUnixMs,
                };
                foreach (var d in v.Damage) state.Damage.Add(d.Offset, d.Length, d.Reason);
                state.Lost.AddRange(v.Lost);
                state.RestoreCommittedHead(v.Lsn, v.Version, v.HeadParent, v.HeadDigest);
                _volumes[v.BaseId] = state;
            }
            start = cp.Position;
        }
        var tStates = clock.Elapsed;
        var recovery = new Recovery(_device, _layout, _segments, _options.Log, ReportError);
        var (pos, needHeader) = recovery.RollForward(start, this);
        var tRoll = clock.Elapsed;
        _headSkips.Clear();
        Resync.DropUncommitted();
        foreach (var v in _volumes.Values) v.ResetHeads(v.Lsn, v.Version, v.HeadParent, v.HeadDigest);
        StartHistoryBases();
        Ownership.SettleKeys();
        LastRecovery = (cp is not null, Checkpoints.Generation, recovery.EntriesReplayed, recovery.BytesReplayed, recovery.StopReason);
        _appender = new GroupCommitAppender(_device, _layout, _segments, this, pos, needHeader, recovery.StaleAfterEnd, _options.Log, OnDeviceFailed,
            Checkpoints.Bound,
            new SpaceRules(_reserveSegments, _options.SpaceWaitLimit, OnSpaceWanted));
        foreach (var v in _volumes.Values.Where(v => v.Damage.Count > 0))
        {
            var first = v.Damage.Snapshot()[0];
            ReportError($"volume {v.BaseId} is damaged on this host: {v.Damage.Count} range(s) read as EIO until written again or repaired, "
                        + $"first {first.Offset}+{first.Length}: {first.Reason}");
        }
        Checkpoints.Opened();
        // Where a restart's time goes, for the operator (and bench/idle_bench.py's restart at 100,000 volumes).
        _options.Log?.Invoke($"recovered {_volumes.Count} volume(s) in {clock.Elapsed.TotalSeconds:0.00} s: checkpoint read {tLoad.TotalSeconds:0.00} s, " +
            $"volume states {(tStates - tLoad).TotalSeconds:0.00} s, roll-forward {(tRoll - tStates).TotalSeconds:0.00} s");
    }

    /// <summary>One line about something an operator must act on (damage, a failed device).</summary>
    internal void ReportError(string message) => (_options.LogError ?? _options.Log)?.Invoke(message);

    string? IReplaySink.Accept(in ReplayedEntry e)
    {
        var refused = ReplayEntry(e.Bytes, e.Header, e.DeviceOffset);
        if (refused is null && e.BadBlocks is { Length: > 0 } bad) MarkBadBlocks(e.Bytes.Span, e.Header, e.DeviceOffset / BlockSize, bad);
        return refused;
    }

    void IReplaySink.Skipped(in SkippedSpan span)
    {
        _replaySkips++;
        _lastSkip = span;
    }

    /// <summary>
    /// Stored blocks of a replayed entry that fail their checksums: each one the volume's index still maps there becomes
    /// damage (EIO until written again or repaired), with one log line per block.
    /// </summary>
    private void MarkBadBlocks(ReadOnlySpan<byte> entry, EntryHeader h, long entryBlock, int[] bad)
    {
        if (h.Kind is not (EntryKind.Data or EntryKind.Relocation) || !_volumes.TryGetValue(h.Volume, out var v)) return;
        var dataStart = entryBlock + h.MetaSectors;
        var k = 0;
        var hits = new List<Index.Extent>(1);
        for (var i = 0; i < h.BlockCount; i++)
        {
            if (!EntryHeader.IsStored(entry, i)) continue;
            if (Array.IndexOf(bad, k) >= 0)
            {
                var logical = h.FirstBlock + i;
                var logBlock = dataStart + k;
                lock (v.IndexLock)
                {
                    hits.Clear();
                    v.Index.Lookup(logical, 1, hits);
                    if (hits.Count == 1 && hits[0].LogBlock == logBlock)
                    {
                        var reason = $"the block stored at log block {logBlock} (entry lsn {h.Lsn} at log block {entryBlock}) fails its checksum";
                        v.Damage.Add(logical * BlockSize, BlockSize, reason);
                        ReportError($"recovery: volume {v.BaseId} bytes {logical * BlockSize}..{logical * BlockSize + BlockSize - 1}: {reason}; it reads as EIO until written again or repaired");
                    }
                }
            }
            k++;
        }
    }

    /// <summary>
    /// The entries of <paramref name="v"/> between its head and <paramref name="h"/> were in a span recovery skipped:
    /// their lsns are kept (not streamable, like compacted history; the last one's version is known from h's parent) and
    /// the whole volume is damaged until written again or repaired, since what they wrote is unknown.
    /// </summary>
    private void BridgeLostEntries(VolumeState v, EntryHeader h)
    {
        var first = v.Lsn + 1;
        var last = h.Lsn - 1;
        var before = v.Version;
        var at = _layout.SegmentOffset(_lastSkip.Segment) + _lastSkip.FromOffset;
        var reason = $"entries lsn {first}..{last} were lost to corruption at log position {at} (segment {_lastSkip.Segment} bytes {_lastSkip.FromOffset}..{_lastSkip.ToOffset - 1})";
        lock (v.IndexLock)
        {
            for (var l = first; l <= last; l++) v.Lsns.Add(at / BlockSize, l == last ? VersionChain.PublicOf(h.Parent) : Id160.Zero);
            v.OldestStreamableLsn = Math.Max(v.OldestStreamableLsn, h.Lsn);
            v.Damage.Add(0, v.SizeBytes, reason);
            v.Lost.Add(new LostEntries(first, last, before, VersionChain.PublicOf(h.Parent), reason));
        }
        ReportError($"recovery: volume {v.BaseId}: {reason}; what they wrote reads as EIO until written again or repaired");
    }

    /// <summary>Chain rules of recovery: null to accept (and apply) the entry, otherwise why the log ends here.</summary>
    private string? ReplayEntry(ReadOnlyMemory<byte> entry, EntryHeader h, long deviceOffset)
    {
        var span = entry.Span;
        var block = deviceOffset / BlockSize;
        switch (h.Kind)
        {
            case EntryKind.Create or EntryKind.Branch:
            {
                if (_volumes.ContainsKey(h.Volume)) return $"a second creation entry for volume {h.Volume}";
                var error = CheckCreation(span, h, out var payload);
                if (error is not null) return error;
                ExtentIndex index;
                if (h.Kind == EntryKind.Branch)
                {
                    if (!_volumes.TryGetValue(payload!.SourceVolume!.Value, out var src)) return $"the branch source volume {payload.SourceVolume} is unknown";
                    long lsn;
                    try { lsn = FindVersion(payload.SourceVersion!.Value).Lsn; }
                    catch (UnknownVersionException) { return $"the branch source version {payload.SourceVersion} is unknown"; }
                    index = BranchIndex(src, lsn, payload.SourceVersion!.Value).Index;
                }
                else index = new ExtentIndex();
                var v = new VolumeState(h.Volume, payload!.SizeBytes, payload.Mode, payload.Replicas, payload.SourceVersion, _keys.Get(h.Volume), index)
                {
                    Name = payload.Name,
                };
                _volumes[h.Volume] = v;
                ApplyCommitted(v, span, block);
                _headSkips[h.Volume] = _replaySkips;
                return null;
            }
            case EntryKind.Relocation:
                return ReplayRelocation(span, h, block);
            case EntryKind.Rewind:
                return ReplayRewind(span, h);
            case EntryKind.ResyncData:
                return Resync.ReplayData(span, h, block);
            case EntryKind.ResyncCommit:
                return Resync.ReplayCommit(span, h, block);
            case EntryKind.Purge:
                return ReplayPurge(h);
            default:
            {
                if (!_volumes.TryGetValue(h.Volume, out var v) || !v.Committed) return $"an entry for unknown volume {h.Volume}";
                if (Restoration.ReplayRestoration(v, span, h, block) || Restoration.ReplayBadEntryCopy(v, span, h, block)) return null;
                var error = Ownership.CheckViewChange(span, h) ?? CheckLifecycle(span, h) ?? CheckChain(v, h);
                // A jump over lsns lost in a span skipped after the volume's head: chain on with a gap.
                if (error is not null && Ownership.CheckViewChange(span, h) is null && h.Kind is not (EntryKind.Create or EntryKind.Branch)
                    && h.Lsn > v.Lsn + 1 && _replaySkips > _headSkips.GetValueOrDefault(v.BaseId))
                {
                    BridgeLostEntries(v, h);
                    error = null;
                }
                if (error is not null) return error;
                if (h.Kind == EntryKind.ViewChange) NoteViewOutOfOrder(v, span, h);
                ApplyCommitted(v, span, block);
                _headSkips[v.BaseId] = _replaySkips;
                return null;
            }
        }
    }

    /// <summary>
    /// Replay of this host's own log does not refuse a view change that is not the next view: the entry verified and
    /// chains on, so this host's writer took it, and the entries after it may be acknowledged writes; ending the log
    /// there would lose them. Only an older build can have written one (before every path checked the number, or after
    /// a fork split that kept the rewound suffix's view), since a corrupted entry fails its CRC or digest. The volume
    /// takes the number the entry names, as that build did, and one line says so.
    /// </summary>
    private void NoteViewOutOfOrder(VolumeState v, ReadOnlySpan<byte> span, EntryHeader h)
    {
        if (ViewChangePayload.Decode(span.Slice(EntryHeader.OffBitmap, h.PayloadLength)) is not { } p || p.ViewNumber == v.ViewNumber + 1) return;
        ReportError($"recovery: volume {v.BaseId}: the view change at lsn {h.Lsn} names view {p.ViewNumber}, but the next view was {v.ViewNumber + 1}; "
                    + $"an older build wrote it, and it is kept as the log has it (the volume is now at view {p.ViewNumber}); a replica that "
                    + "streams the volume from before it refuses it");
    }

    /// <summary>The rules a creation (or branch) entry obeys wherever it comes from.</summary>
    internal static string? CheckCreation(ReadOnlySpan<byte> span, EntryHeader h, out CreatePayload? payload)
    {
        payload = null;
        if (h.Lsn != 1 || !h.Parent.IsZero || h.Version != h.Volume) return "a creation entry must have lsn 1, no parent and version = volume id";
        payload = CreatePayload.Decode(span.Slice(EntryHeader.OffBitmap, h.PayloadLength), h.Kind == EntryKind.Branch);
        return payload is null ? "the creation entry's payload is malformed" : null;
    }

    /// <summary>lsn == head + 1 and H(parent) == head version: the entry extends exactly this chain.</summary>
    private static string? CheckChain(VolumeState v, EntryHeader h)
    {
        if (h.Kind is EntryKind.Create or EntryKind.Branch) return $"a second creation entry for volume {h.Volume}";
        if (h.Lsn != v.Lsn + 1) return $"volume {v.BaseId}: lsn {h.Lsn} does not follow the head lsn {v.Lsn}";
        if (VersionChain.PublicOf(h.Parent) != v.Version) return $"volume {v.BaseId}: the entry at lsn {h.Lsn} does not chain onto version {v.Version}";
        return null;
    }
}
