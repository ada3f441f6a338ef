// Which segments are free, in use, or waiting for a checkpoint before they may be reused; and each one's seq.
namespace CloudFs.BlockDevice.Log;

internal enum SegmentState : byte { Free = 0, Used = 1, Current = 2, Reclaimed = 3 }

internal sealed class SegmentTable
{
    private readonly SegmentState[] _state;
    private readonly ulong[] _seq;
    private readonly object _gate = new();
    private int _free;

    public SegmentTable(int count)
    {
        _state = new SegmentState[count];
        _seq = new ulong[count];
        _free = count;
    }

    public int Count => _state.Length;

    public SegmentState StateOf(int i) { lock (_gate) return _state[i]; }
    public ulong SeqOf(int i) { lock (_gate) return _seq[i]; }

    public void Set(int i, SegmentState s, ulong seq) { lock (_gate) { Change(i, s); _seq[i] = seq; } }

    public int FreeCount => Volatile.Read(ref _free);

    /// <summary>
    /// Takes the first free segment after <paramref name="after"/> (wrapping), or -1 when no more than
    /// <paramref name="keep"/> are free (the segments kept for compaction; 0 for compaction itself).
    /// </summary>
    public int Allocate(int after, ulong seq, int keep = 0)
    {
        lock (_gate)
        {
            if (_free <= keep) return -1;
            for (var k = 1; k <= _state.Length; k++)
            {
                var i = (after + k) % _state.Length;
                if (_state[i] != SegmentState.Free) continue;
                Change(i, SegmentState.Current);
                _seq[i] = seq;
                return i;
            }
            return -1;
        }
    }

    /// <summary>Segments compaction emptied become free once a checkpoint that no longer needs them is durable.</summary>
    public int FreeReclaimed(IReadOnlySet<int> which)
    {
        lock (_gate)
        {
            var n = 0;
            foreach (var i in which)
                if (_state[i] == SegmentState.Reclaimed) { Change(i, SegmentState.Free); n++; }
            return n;
        }
    }

    public (SegmentState[] States, ulong[] Seqs) Copy() { lock (_gate) return ((SegmentState[])_state.Clone(), (ulong[])_seq.Clone()); }

    private void Change(int i, SegmentState s)
    {
        if (_state[i] == SegmentState.Free && s != SegmentState.Free) _free--;
        else if (_state[i] != SegmentState.Free && s == SegmentState.Free) _free++;
        _state[i] = s;
    }
}
