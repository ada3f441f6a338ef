// The ranges of one volume that this host knows it cannot serve: stored blocks that failed their checksums, and the
// reach of entries lost to corruption. Reads that touch them fail (EIO); a later write or a repair clears what it covers.
namespace CloudFs.BlockDevice.Volumes;

/// <summary>
/// Sorted, non-overlapping damaged byte ranges of one volume. Not thread-safe: the owner guards it with the volume's
/// IndexLock, like the index whose reads it vetoes. Empty for almost every volume, so every check is one count test.
/// </summary>
internal sealed class DamageMap
{
    private readonly List<DamagedRange> _ranges = new();

    public int Count => _ranges.Count;

    /// <summary>Marks [offset, offset+length) damaged; what it overlaps takes the new reason.</summary>
    public void Add(long offset, long length, string reason)
    {
        if (length <= 0) return;
        Clear(offset, length);
        var at = FirstEndingAfter(offset);
        _ranges.Insert(at, new DamagedRange(offset, length, reason));
        // Neighbours with the same reason become one range, so a run of bad blocks is one line in every report.
        if (at + 1 < _ranges.Count && _ranges[at + 1].Offset == offset + length && _ranges[at + 1].Reason == reason)
        {
            _ranges[at] = _ranges[at] with { Length = length + _ranges[at + 1].Length };
            _ranges.RemoveAt(at + 1);
        }
        if (at > 0 && _ranges[at - 1].End == offset && _ranges[at - 1].Reason == reason)
        {
            _ranges[at - 1] = _ranges[at - 1] with { Length = _ranges[at - 1].Length + _ranges[at].Length };
            _ranges.RemoveAt(at);
        }
    }

    /// <summary>
    /// Marks the parts of [offset, offset+length) damaged that no range with a reason <paramref name="keep"/> accepts
    /// already covers: those keep their reason (it says more about them than the new one).
    /// </summary>
    public void AddOutside(long offset, long length, string reason, Func<string, bool> keep)
    {
        var end = offset + length;
        var gaps = new List<(long Offset, long End)>();
        var pos = offset;
        for (var i = FirstEndingAfter(offset); i < _ranges.Count && _ranges[i].Offset < end; i++)
        {
            if (!keep(_ranges[i].Reason)) continue;
            if (_ranges[i].Offset > pos) gaps.Add((pos, _ranges[i].Offset));
            pos = Math.Max(pos, _ranges[i].End);
        }
        if (pos < end) gaps.Add((pos, end));
        foreach (var (o, e) in gaps) Add(o, e - o, reason);
    }

    /// <summary>Forgets every range whose reason is <paramref name="reason"/>.</summary>
    public void ClearReason(string reason) => _ranges.RemoveAll(r => r.Reason == reason);

    /// <summary>The ranges whose reason is <paramref name="reason"/>, in order.</summary>
    public List<DamagedRange> WithReason(string reason) => _ranges.FindAll(r => r.Reason == reason);

    /// <summary>Forgets the damage inside [offset, offset+length): the range was written again or repaired.</summary>
    public void Clear(long offset, long length)
    {
        if (_ranges.Count == 0 || length <= 0) return;
        var end = offset + length;
        for (var i = FirstEndingAfter(offset); i < _ranges.Count && _ranges[i].Offset < end;)
        {
            var r = _ranges[i];
            _ranges.RemoveAt(i);
            if (r.End > end) _ranges.Insert(i, r with { Offset = end, Length = r.End - end });
            if (r.Offset < offset) _ranges.Insert(i, r with { Length = offset - r.Offset });
            i += (r.Offset < offset ? 1 : 0) + (r.End > end ? 1 : 0);
        }
    }

    /// <summary>The first damaged range that overlaps [offset, offset+length), if any.</summary>
    public DamagedRange? FirstOverlap(long offset, long length)
    {
        if (_ranges.Count == 0) return null;
        var i = FirstEndingAfter(offset);
        return i < _ranges.Count && _ranges[i].Offset < offset + length ? _ranges[i] : null;
    }

    public DamagedRange[] Snapshot() => _ranges.ToArray();

    public DamageMap Copy()
    {
        var copy = new DamageMap();
        copy._ranges.AddRange(_ranges);
        return copy;
    }

    /// <summary>Index of the first range whose end lies after <paramref name="offset"/> (binary search).</summary>
    private int FirstEndingAfter(long offset)
    {
        int lo = 0, hi = _ranges.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_ranges[mid].End <= offset) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
