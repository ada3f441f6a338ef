// Appends waiting for room in the log: an ordinary entry that would need one of the segments kept for compaction waits
// here (with the entries and flushes queued after it, in order) while the writer goes on with compaction's own entries.
using System.Diagnostics;

namespace CloudFs.BlockDevice.Log;

/// <summary>
/// How the writer shares the last free segments: <paramref name="ReserveSegments"/> of them only compaction's
/// relocations may take; an ordinary entry that would need one waits up to <paramref name="MaxWait"/> for compaction to
/// free space. <paramref name="Wanted"/> runs on the writer thread (it must not block) after the writer takes a
/// segment and when an entry starts waiting.
/// </summary>
internal sealed record SpaceRules(int ReserveSegments, TimeSpan MaxWait, Action Wanted)
{
    public static readonly SpaceRules None = new(0, TimeSpan.Zero, () => { });
}

/// <summary>
/// The waiting requests, oldest first (each knows since when it waits, a Stopwatch timestamp). The list is the writer
/// thread's; the signals come from other threads under the writer's gate.
/// </summary>
internal sealed class SpaceWaiters(TimeSpan maxWait)
{
    private readonly long _maxWait = (long)Math.Min(maxWait.TotalSeconds * Stopwatch.Frequency, long.MaxValue / 2);
    private readonly List<LogRequest> _list = new();
    private int _count;
    private bool _freed;
    private long _refuseBefore = long.MinValue;
    private long _waited, _refused;

    /// <summary>Requests waiting now (any thread).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Entries that had to wait for room, and entries that failed for want of it after waiting (any thread).</summary>
    public long Waited => Interlocked.Read(ref _waited);
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Writer thread: <paramref name="r"/> waits (again) at the end of the line.</summary>
    public void Add(LogRequest r, long now)
    {
        if (r.WaitingSince == 0)
        {
            r.WaitingSince = now;
            if (r is EntryItem) Interlocked.Increment(ref _waited);
        }
        _list.Add(r);
        Volatile.Write(ref _count, _list.Count);
    }

    /// <summary>Under the gate: segments were freed, so the waiting entries should try again.</summary>
    public void SignalFreed() => _freed = true;

    /// <summary>Under the gate: compaction that scanned the log at <paramref name="stamp"/> could free nothing; entries waiting since before then give up.</summary>
    public void SignalRefuse(long stamp) => _refuseBefore = Math.Max(_refuseBefore, stamp);

    /// <summary>Under the gate: whether the first waiting entry should try again (or give up) now.</summary>
    public bool Due(long now) =>
        _list.Count > 0 && (_freed || now - _list[0].WaitingSince >= _maxWait || _list[0].WaitingSince < _refuseBefore);

    /// <summary>Under the gate: how long the writer may sleep before the first waiting entry's time is up.</summary>
    public int MillisUntilDue(long now) =>
        _list.Count == 0 ? Timeout.Infinite : (int)Math.Clamp((_list[0].WaitingSince + _maxWait - now) * 1000 / Stopwatch.Frequency + 1, 0, int.MaxValue);

    /// <summary>Under the gate: everything waiting, in order, to try again now.</summary>
    public List<LogRequest> TakeAll()
    {
        _freed = false;
        var all = new List<LogRequest>(_list);
        _list.Clear();
        Volatile.Write(ref _count, 0);
        return all;
    }

    /// <summary>Writer thread: why an entry that (still) finds no room gives up instead of waiting on, or null to wait.</summary>
    public string? GiveUpReason(LogRequest r, long now)
    {
        var since = r.WaitingSince == 0 ? now : r.WaitingSince;
        return since < Volatile.Read(ref _refuseBefore) ? "compaction found nothing it could free"
            : now - since >= _maxWait ? $"compaction freed none within {maxWait.TotalSeconds:0.###} s"
            : null;
    }

    public void CountRefused() => Interlocked.Increment(ref _refused);
}
