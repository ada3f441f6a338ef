// Checkpoints: captured on the writer thread at a barrier (so heads, indexes and the roll-forward position agree),
// serialized off it from copy-on-write snapshots, written into the older slot, then made durable; and the newer valid
// one loaded when the store opens.
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Log;

/// <summary>
/// The checkpoints of one store (<see cref="LogStore.Checkpoints"/>): when one is due, writing one, and loading the
/// newer one at open. It owns the checkpoint gate (one at a time), the generation, the replay bound and whether
/// anything changed since the last one; what it captures (volumes, segments) is the store's.
/// </summary>
public sealed class Checkpoints
{
    private readonly LogStore _store;
    private readonly LogStoreOptions _options;
    private readonly ILogDevice _device;
    private readonly DeviceHeader _layout;
    private readonly SegmentTable _segments;
    private readonly SemaphoreSlim _checkpointGate = new(1, 1);
    private DateTime _lastCheckpoint;
    private volatile bool _changedSinceCheckpoint;

    internal Checkpoints(LogStore store, LogStoreOptions options, ILogDevice device, DeviceHeader layout, SegmentTable segments)
    {
        _store = store;
        _options = options;
        _device = device;
        _layout = layout;
        _segments = segments;
        Bound = new CheckpointBound(options.CheckpointBytes);
    }

    /// <summary>What a crash would replay, its high-water mark, and the writer's waits at the bound (the writer and tests).</summary>
    internal CheckpointBound Bound { get; }

    /// <summary>The generation of the last checkpoint loaded or captured.</summary>
    internal ulong Generation { get; private set; }

    /// <summary>Something the next checkpoint must capture changed.</summary>
    internal void NoteChange() => _changedSinceCheckpoint = true;

    /// <summary>The store finished opening: the interval to the next checkpoint counts from now.</summary>
    internal void Opened() => _lastCheckpoint = DateTime.UtcNow;

    /// <summary>Writes a checkpoint now (into the older slot) after making the log durable.</summary>
    public Task WriteAsync(CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        return WriteAndFreeAsync(ct);
    }

    /// <summary>Checkpoints when the interval or byte threshold says so; the node calls it from a timer.</summary>
    public Task MaybeWriteAsync(CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        var due = Bound.SinceCapture >= _options.CheckpointBytes / 2
                  || (_changedSinceCheckpoint && DateTime.UtcNow - _lastCheckpoint >= _options.CheckpointInterval);
        return due ? WriteAndFreeAsync(ct) : Task.CompletedTask;
    }

    /// <summary>
    /// Writer thread, once half of CheckpointBytes was written since the last capture (<see cref="Bound"/>):
    /// a checkpoint's barrier for the writer to run right where it is, so that what a crash replays stays within
    /// CheckpointBytes however fast the log is written. Null when a checkpoint is already under way (or closing).
    /// </summary>
    internal BarrierItem? ForBound()
    {
        if (_store.IsDisposed || !_checkpointGate.Wait(0)) return null;
        CheckpointData? data = null;
        var barrier = new BarrierItem(pos => data = Capture(pos));
        _ = CompleteForBoundAsync(barrier, () => data);
        return barrier;
    }

    private async Task CompleteForBoundAsync(BarrierItem barrier, Func<CheckpointData?> data)
    {
        try { await CompleteCheckpointAsync(barrier, data, CancellationToken.None).ConfigureAwait(false); }
        catch (Exception e) when (_store.IsDisposed) { _ = e; }   // closing: its own checkpoint follows
        catch (Exception e) { _options.Log?.Invoke($"checkpoint for the replay bound failed: {e.Message}; the next timer tick tries again"); }
    }

    /// <summary>Writes a checkpoint and frees the segments it no longer needs; returns how many it freed.</summary>
    internal async Task<int> WriteAndFreeAsync(CancellationToken ct)
    {
        await _checkpointGate.WaitAsync(ct).ConfigureAwait(false);
        CheckpointData? data = null;
        var barrier = new BarrierItem(pos => data = Capture(pos));
        _store.Appender.Enqueue(barrier);
        return await CompleteCheckpointAsync(barrier, () => data, ct).ConfigureAwait(false);
    }

    /// <summary>The holder of the checkpoint gate: waits for the barrier's capture, writes the slot, releases the gate.</summary>
    private async Task<int> CompleteCheckpointAsync(BarrierItem barrier, Func<CheckpointData?> captured, CancellationToken ct)
    {
        try
        {
            await barrier.Done.Task.ConfigureAwait(false);
            // A resync is being staged: its pieces before the barrier would not be replayed from this checkpoint.
            if (captured() is not { } data) return 0;
            var reclaimed = new HashSet<int>();
            for (var i = 0; i < data.States.Length; i++)
                if (data.States[i] == SegmentState.Reclaimed) reclaimed.Add(i);
            try { await Task.Run(() => WriteSlot(data), ct).ConfigureAwait(false); }
            catch
            {
                Bound.Ended(durable: false);
                throw;
            }
            Bound.Ended(durable: true);
            return _store.OnCheckpointDurable(reclaimed);
        }
        finally { _checkpointGate.Release(); }
    }

    /// <summary>Runs on the writer thread: everything before is written, durable and applied; nothing moves meanwhile.</summary>
    private CheckpointData? Capture(WriterPosition pos)
    {
        if (_store.Resync.IsStaging)
        {
            Bound.Declined();
            return null;
        }
        var (states, seqs) = _segments.Copy();
        var vols = new List<VolumeCheckpoint>();
        foreach (var v in _store.VolumeStates.Values)
        {
            if (!v.Committed) continue;
            lock (v.IndexLock)
            {
                var (blocks, prefixes, count) = v.Lsns.Capture();
                vols.Add(new VolumeCheckpoint(v.BaseId, v.SizeBytes, v.Mode, v.Replicas, v.BranchedFrom, v.Lsn, v.Version, v.HeadParent,
                    v.HeadDigest, v.OldestStreamableLsn, blocks, prefixes, count, v.Index.Snapshot()) { ViewNumber = v.ViewNumber, View = v.View, Damage = v.Damage.Snapshot(), Name = v.Name, TrashedAtUnixMs = v.TrashedAtUnixMs, Lost = v.Lost.ToArray(),
                    Protected = v.Protected.Select(p => (p.Key, p.Value)).ToArray(),
                    History = v.History is { Index: { } hi } h ? h with { Index = hi.Snapshot() } : v.History,
                    Changes = v.Lsns.CaptureChanges() });
            }
        }
        Generation++;
        Bound.Captured();
        _changedSinceCheckpoint = false;
        _lastCheckpoint = DateTime.UtcNow;
        return new CheckpointData(Generation, pos, states, seqs, vols);
    }

    private void WriteSlot(CheckpointData data)
    {
        var bytes = Checkpoint.Encode(data, _layout.DeviceId);
        var len = bytes.WrittenCount;
        if (len > _layout.CheckpointSlotSize)
        {
            _options.Log?.Invoke($"checkpoint of {len} bytes does not fit its {_layout.CheckpointSlotSize}-byte slot; recovery keeps rolling forward from the previous one");
            throw new LogFullException($"the checkpoint ({len} bytes) does not fit the checkpoint slot ({_layout.CheckpointSlotSize} bytes)");
        }
        var slot = data.Generation % 2 == 1 ? _layout.CheckpointSlotA : _layout.CheckpointSlotB;
        var total = (len + AlignedBuffer.Alignment - 1) & ~(AlignedBuffer.Alignment - 1);
        using var buf = new AlignedBuffer(total);
        bytes.WrittenSpan.CopyTo(buf.Span);
        _device.Write(buf.Span, slot);
        _device.Flush();
    }

    internal CheckpointData? LoadNewest()
    {
        // The slots' headers first: only the newest is decoded (at 100,000 volumes a checkpoint is ~38 MB and takes over
        // a second to decode); the older one only when the newest fails its checksum or does not decode.
        var slots = new List<(long Slot, ulong Generation, long Length, uint Crc)>(2);
        using (var head = new AlignedBuffer(AlignedBuffer.Alignment))
            foreach (var slot in new[] { _layout.CheckpointSlotA, _layout.CheckpointSlotB })
            {
                try
                {
                    _device.Read(head.Span, slot);
                    if (Checkpoint.TryReadHeader(head.Span, _layout.DeviceId, _layout.CheckpointSlotSize, out var gen, out var len, out var crc))
                        slots.Add((slot, gen, len, crc));
                }
                catch (Exception ex) when (ex is FormatException or InvalidDataException or CloudFsException or ArgumentException)
                {
                    _options.Log?.Invoke($"checkpoint slot at {slot} is unusable: {ex.Message}");
                }
            }
        CheckpointData? best = null;
        foreach (var (slot, gen, len, crc) in slots.OrderByDescending(s => s.Generation))
        {
            try
            {
                var total = (int)((Checkpoint.HeaderSize + len + AlignedBuffer.Alignment - 1) & ~(long)(AlignedBuffer.Alignment - 1));
                using var buf = new AlignedBuffer(total);
                _device.Read(buf.Span, slot);
                var payload = buf.Span.Slice(Checkpoint.HeaderSize, (int)len);
                if (Crc32C.Compute(payload) != crc) { _options.Log?.Invoke($"checkpoint generation {gen} fails its checksum; ignoring it"); continue; }
                best = Checkpoint.Decode(gen, payload, _layout.SegmentCount);
                break;
            }
            catch (Exception ex) when (ex is FormatException or InvalidDataException or CloudFsException or ArgumentException)
            {
                _options.Log?.Invoke($"checkpoint slot at {slot} is unusable: {ex.Message}");
            }
        }
        if (best is not null) Generation = best.Generation;
        if (best is not null) _options.Log?.Invoke($"loaded checkpoint generation {best.Generation}");
        else _options.Log?.Invoke("no valid checkpoint: rolling forward from the first segment");
        return best;
    }
}
