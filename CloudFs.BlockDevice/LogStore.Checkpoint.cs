// Checkpoints: captured on the writer thread at a barrier (so heads, indexes and the roll-forward position agree),
// serialized off it from copy-on-write snapshots, written into the older slot, then made durable.
using CloudFs.BlockDevice.Device;
using CloudFs.BlockDevice.Log;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    private readonly SemaphoreSlim _checkpointGate = new(1, 1);
    private DateTime _lastCheckpoint;
    private CheckpointBound _checkpointBound = null!;

    /// <summary>Tests: what a crash would replay, its high-water mark, and the writer's waits at the bound.</summary>
    internal CheckpointBound CheckpointBound => _checkpointBound;


    /// <summary>Writes a checkpoint now (into the older slot) after making the log durable.</summary>
    public Task CheckpointAsync(CancellationToken ct = default)
    {
        ThrowIfDisposed();
        return WriteCheckpointAsync(ct);
    }

    /// <summary>Checkpoints when the interval or byte threshold says so; the node calls it from a timer.</summary>
    public Task MaybeCheckpointAsync(CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var due = _checkpointBound.SinceCapture >= _options.CheckpointBytes / 2
                  || (_changedSinceCheckpoint && DateTime.UtcNow - _lastCheckpoint >= _options.CheckpointInterval);
        return due ? WriteCheckpointAsync(ct) : Task.CompletedTask;
    }

    /// <summary>
    /// Writer thread, once half of CheckpointBytes was written since the last capture (<see cref="CheckpointBound"/>):
    /// a checkpoint's barrier for the writer to run right where it is, so that what a crash replays stays within
    /// CheckpointBytes however fast the log is written. Null when a checkpoint is already under way (or closing).
    /// </summary>
    BarrierItem? IAppendSink.CheckpointNow()
    {
        if (Volatile.Read(ref _disposed) != 0 || !_checkpointGate.Wait(0)) return null;
        CheckpointData? data = null;
        var barrier = new BarrierItem(pos => data = Capture(pos));
        _ = CompleteForBoundAsync(barrier, () => data);
        return barrier;
    }

    private async Task CompleteForBoundAsync(BarrierItem barrier, Func<CheckpointData?> data)
    {
        try { await CompleteCheckpointAsync(barrier, data, CancellationToken.None).ConfigureAwait(false); }
        catch (Exception e) when (Volatile.Read(ref _disposed) != 0) { _ = e; }   // closing: its own checkpoint follows
        catch (Exception e) { _options.Log?.Invoke($"checkpoint for the replay bound failed: {e.Message}; the next timer tick tries again"); }
    }

    /// <summary>Returns how many reclaimed segments it freed.</summary>
    private async Task<int> WriteCheckpointAsync(CancellationToken ct)
    {
        await _checkpointGate.WaitAsync(ct).ConfigureAwait(false);
        CheckpointData? data = null;
        var barrier = new BarrierItem(pos => data = Capture(pos));
        _appender.Enqueue(barrier);
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
                _checkpointBound.Ended(durable: false);
                throw;
            }
            _checkpointBound.Ended(durable: true);
            return OnCheckpointDurable(reclaimed);
        }
        finally { _checkpointGate.Release(); }
    }

    /// <summary>Runs on the writer thread: everything before is written, durable and applied; nothing moves meanwhile.</summary>
    private CheckpointData? Capture(WriterPosition pos)
    {
        if (Resync.IsStaging)
        {
            _checkpointBound.Declined();
            return null;
        }
        var (states, seqs) = _segments.Copy();
        var vols = new List<VolumeCheckpoint>();
        foreach (var v in _volumes.Values)
        {
            if (!v.Committed) continue;
            lock (v.IndexLock)
            {
                var (blocks, prefixes, count) = v.Lsns.Capture();
                vols.Add(new VolumeCheckpoint(v.BaseId, v.SizeBytes, v.Mode, v.Replicas, v.BranchedFrom, v.Lsn, v.Version, v.HeadParent,
                    v.HeadDigest, v.OldestStreamableLsn, blocks, prefixes, count, v.Index.Snapshot()) { ViewNumber = v.ViewNumber, View = v.View, Damage = v.Damage.Snapshot(), Name = v.Name, TrashedAtUnixMs = v.TrashedAtUnixMs, Lost = v.Lost.ToArray() });
            }
        }
        _checkpointGeneration++;
        _checkpointBound.Captured();
        _changedSinceCheckpoint = false;
        _lastCheckpoint = DateTime.UtcNow;
        return new CheckpointData(_checkpointGeneration, pos, states, seqs, vols);
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
}
