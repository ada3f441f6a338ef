// What callers hand the group-commit writer: entries to append, flush requests, and barriers (checkpoint capture).
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice.Log;

internal abstract class LogRequest
{
    /// <summary>When (Stopwatch timestamp) the request began to wait for room in the log; 0 while it has not.</summary>
    public long WaitingSince { get; set; }
}

internal sealed class EntryItem(EntryBuffer buffer, VolumeState? volume, EntryKind kind, long lsn, Id160 version, int epoch, bool durable)
    : LogRequest, IThreadPoolWorkItem
{
    public EntryBuffer Buffer { get; } = buffer;
    public VolumeState? Volume { get; } = volume;
    public EntryKind Kind { get; } = kind;
    public long Lsn { get; } = lsn;
    public Id160 Version { get; } = version;
    public int Epoch { get; } = epoch;
    public bool Durable { get; } = durable;
    /// <summary>The entry's clear chain id when this node extends the chain (zero for applied and relocation entries).</summary>
    public Id160 ClearId { get; init; }
    /// <summary>Byte offset of the entry on the device, set by the writer when it is placed.</summary>
    public long DeviceOffset { get; set; } = -1;
    /// <summary>A view change or rewind: the volume's view number once the writer has placed it (-1: unchanged).</summary>
    public long ViewNumber { get; init; } = -1;
    /// <summary>A lost entry appended again from a replica's copy (EntryRestoration.RestoreLostEntriesAsync): outside the chain's
    /// head, applied by its AfterWrite step.</summary>
    public bool RestoresLostEntry { get; init; }
    /// <summary>A replica's copy of the entry of its lsn, appended again to take the place of the entry whose header went
    /// bad at this log block (EntryRestoration.RestoreBadEntryAsync); -1 for any other entry. Outside the chain's head, applied by
    /// its AfterWrite step.</summary>
    public long ReplacesBadEntry { get; init; } = -1;
    /// <summary>An entry of a volume's chain appended again from a replica's copy (a lost one or one whose header went bad):
    /// it does not move the head and is not fed to replicas.</summary>
    public bool RestoresEntry => RestoresLostEntry || ReplacesBadEntry >= 0;
    /// <summary>Extra work for the writer thread after the entry is written (compaction's relocation bookkeeping).</summary>
    public Action<EntryItem>? AfterWrite { get; init; }
    public TaskCompletionSource<AppendResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>Told the outcome on the log's thread instead of <see cref="Done"/> (the volume writer's entries).</summary>
    public IAppendCompletion? Completion { get; init; }
    private int _told;

    /// <summary>Whether the outcome was told (success or failure).</summary>
    public bool IsTold => Volatile.Read(ref _told) != 0 || Done.Task.IsCompleted;

    /// <summary>The entry is in the log and applied: its requester is told (its lsn and version).</summary>
    public void Succeed()
    {
        var result = new AppendResult(Lsn, Version);
        if (Completion is null) { Done.TrySetResult(result); return; }
        if (Interlocked.Exchange(ref _told, 1) == 0) Completion.Completed(result);
    }

    /// <summary>Run on the pool: the written entry's <see cref="Completion"/> is told there (no allocation for it).</summary>
    void IThreadPoolWorkItem.Execute() => Succeed();

    public void Fail(Exception error)
    {
        if (Completion is null) { Done.TrySetException(error); return; }
        if (Interlocked.Exchange(ref _told, 1) == 0) Completion.Failed(error);
    }
}

internal sealed class FlushItem : LogRequest
{
    public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Runs on the writer thread once everything queued before it is written, durable and applied.</summary>
internal sealed class BarrierItem(Action<WriterPosition> run) : LogRequest
{
    public Action<WriterPosition> Run { get; } = run;
    public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Where the next entry goes: the roll-forward start a checkpoint records.</summary>
internal readonly record struct WriterPosition(int Segment, ulong Seq, long Offset, ulong NextSeq);

/// <summary>The store's side of appending: chain admission on the writer thread, and applying written entries.</summary>
internal interface IAppendSink
{
    /// <summary>Null to place the entry, or why it can no longer be appended (its chain was abandoned).</summary>
    Exception? Admit(EntryItem e);
    void Placed(EntryItem e);
    void Rejected(EntryItem e, Exception error);
    /// <summary>The entry is on the device (durable if asked): index, lsn table, head, events.</summary>
    void Applied(EntryItem e);
    /// <summary>Writer thread, when the checkpoint bound wants a capture: a checkpoint's barrier to run now, or null.</summary>
    BarrierItem? CheckpointNow();
}
