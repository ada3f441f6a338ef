// What a replica's follower holds of the primary's chain on one feed connection, and how far its catch-up got. The
// written and durable heads come from the log's completion path; the chunks from the feed loop. An acknowledgement is
// due when the last entry of a chunk is written or when more is durable, not per entry. A catch-up is done when this
// host has *written* every entry up to the primary's head it was sent, not when those bytes arrived: a catch-up of
// megabytes is still being applied then, and the replica is not current until it is. The catch-up's reports are made
// under the same lock as its end, so a report of progress never follows the report of its end.
namespace CloudFs.Actors.Replication;

public sealed class FollowerProgress(Action<long, long> catchingUp, Action<FollowerProgress.CaughtUp> caughtUp)
{
    private readonly object _gate = new();
    private long _written, _durable;
    private readonly Queue<long> _chunkEnds = new();   // the last lsn of each chunk handed to the apply and not yet written
    private long _from, _bytes;
    private long _followAt = -1;                       // the head every missing entry up to was sent (-1: not yet)
    private bool _caughtUp;
    private System.Diagnostics.Stopwatch _clock = new();

    /// <summary>A catch-up that ended: the entries (<paramref name="First"/>..<paramref name="Last"/>) and bytes it
    /// moved, and how long it took.</summary>
    public sealed record CaughtUp(long First, long Last, long Bytes, TimeSpan Took);

    /// <summary>The heads an acknowledgement carries now.</summary>
    public (long Written, long Durable) Heads
    {
        get { lock (_gate) return (_written, _durable); }
    }

    /// <summary>A connection starts from <paramref name="after"/> (the common head with the primary): what this host
    /// holds, and the catch-up, are measured from there.</summary>
    public void Start(long after)
    {
        lock (_gate)
        {
            _written = _durable = after;
            _chunkEnds.Clear();
            _from = after;
            _bytes = 0;
            _followAt = -1;
            _caughtUp = false;
            _clock = System.Diagnostics.Stopwatch.StartNew();
        }
    }

    /// <summary>A chunk of <paramref name="bytes"/> ending at <paramref name="lastLsn"/> goes to the apply; its last
    /// entry's write is what acknowledges it.</summary>
    public void ChunkSent(long lastLsn, int bytes)
    {
        lock (_gate)
        {
            _chunkEnds.Enqueue(lastLsn);
            _bytes += bytes;
        }
    }

    /// <summary>
    /// The log wrote (and made durable) entries up to these lsns. Returns whether an acknowledgement is due; ends the
    /// catch-up when this write completes it.
    /// </summary>
    public bool Held(long written, long durable)
    {
        lock (_gate)
        {
            var endOfChunk = false;
            if (written > _written)
            {
                _written = written;
                while (_chunkEnds.Count > 0 && _chunkEnds.Peek() <= written)
                {
                    _chunkEnds.Dequeue();
                    endOfChunk = true;
                }
            }
            var moreDurable = durable > _durable;
            if (moreDurable) _durable = durable;
            EndIfWrittenLocked();
            return endOfChunk || moreDurable || (_chunkEnds.Count == 0 && written == _written);
        }
    }

    /// <summary>
    /// A chunk (possibly empty) came with the primary's head <paramref name="head"/> and the last lsn the feed has sent,
    /// <paramref name="last"/>. Once that is the head, the catch-up ends when this host has written it (at once when it
    /// already has); until it ends, its progress is reported: entries written of those missing.
    /// </summary>
    public void Received(long last, long head)
    {
        lock (_gate)
        {
            if (_caughtUp) return;
            if (last >= head && _followAt < 0) _followAt = last;
            if (!EndIfWrittenLocked()) catchingUp(_written - _from, Math.Max(head, _followAt) - _from);
        }
    }

    private bool EndIfWrittenLocked()
    {
        if (_caughtUp || _followAt < 0 || _written < _followAt) return _caughtUp;
        _caughtUp = true;
        caughtUp(new CaughtUp(_from + 1, _written, _bytes, _clock.Elapsed));
        return true;
    }
}
