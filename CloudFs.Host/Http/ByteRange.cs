// RFC 7233 byte ranges for /volumes/<id>: the Range header of a GET and the Content-Range header of a PUT.
using System.Globalization;

namespace CloudFs.Host.Http;

internal enum RangeKind
{
    /// <summary>No Range header, or a unit other than bytes (which RFC 7233 says to ignore): the whole volume.</summary>
    Whole,
    /// <summary>One satisfiable range: <see cref="ByteRange.Start"/>..<see cref="ByteRange.End"/> inclusive, clipped to the size.</summary>
    Satisfiable,
    /// <summary>Syntactically fine but outside the volume: 416 with Content-Range: bytes */size.</summary>
    Unsatisfiable,
    /// <summary>Malformed, or more than one range (not supported here): 400 with the reason.</summary>
    Invalid,
}

internal readonly record struct ByteRange(RangeKind Kind, long Start, long End, string? Reason = null)
{
    public long Length => End - Start + 1;

    /// <summary>Parses a GET's Range header against a volume of <paramref name="size"/> bytes.</summary>
    public static ByteRange ParseRange(string? header, long size)
    {
        if (string.IsNullOrWhiteSpace(header)) return new(RangeKind.Whole, 0, size - 1);
        var h = header.Trim();
        var eq = h.IndexOf('=');
        if (eq <= 0) return Invalid("the Range header is not of the form bytes=FIRST-LAST");
        if (!h.AsSpan(0, eq).Trim().Equals("bytes", StringComparison.OrdinalIgnoreCase)) return new(RangeKind.Whole, 0, size - 1);
        var set = h[(eq + 1)..].Trim();
        if (set.Contains(',')) return Invalid("multiple ranges in one request are not supported; ask one range per request");
        var dash = set.IndexOf('-');
        if (dash < 0) return Invalid($"'{set}' is not a byte range (FIRST-LAST, FIRST- or -SUFFIX)");
        var first = set[..dash].Trim();
        var last = set[(dash + 1)..].Trim();
        if (first.Length == 0)
        {
            // Suffix range: the last N bytes.
            if (!TryNumber(last, out var suffix)) return Invalid($"'{set}' is not a byte range");
            if (suffix == 0 || size == 0) return new(RangeKind.Unsatisfiable, 0, -1);
            return new(RangeKind.Satisfiable, Math.Max(0, size - suffix), size - 1);
        }
        if (!TryNumber(first, out var start)) return Invalid($"'{set}' is not a byte range");
        long end = size - 1;
        if (last.Length > 0)
        {
            if (!TryNumber(last, out end)) return Invalid($"'{set}' is not a byte range");
            if (end < start) return Invalid($"'{set}' ends before it starts");
        }
        if (start >= size) return new(RangeKind.Unsatisfiable, 0, -1);
        return new(RangeKind.Satisfiable, start, Math.Min(end, size - 1));
    }

    /// <summary>Parses a PUT's Content-Range "bytes FIRST-LAST/TOTAL" (TOTAL may be *); the range must lie inside the volume.</summary>
    public static ByteRange ParseContentRange(string? header, long size)
    {
        if (string.IsNullOrWhiteSpace(header)) return Invalid("a PUT needs a Content-Range: bytes FIRST-LAST/TOTAL header");
        var h = header.Trim();
        if (!h.StartsWith("bytes ", StringComparison.OrdinalIgnoreCase)) return Invalid("Content-Range must start with 'bytes '");
        var spec = h[6..].Trim();
        var slash = spec.IndexOf('/');
        if (slash < 0) return Invalid("Content-Range is not of the form bytes FIRST-LAST/TOTAL");
        var total = spec[(slash + 1)..].Trim();
        if (total != "*" && (!TryNumber(total, out var t) || t != size))
            return Invalid($"Content-Range total '{total}' is not the volume size {size}");
        var range = spec[..slash];
        var dash = range.IndexOf('-');
        if (dash <= 0 || !TryNumber(range[..dash].Trim(), out var start) || !TryNumber(range[(dash + 1)..].Trim(), out var end))
            return Invalid($"'{range}' is not a byte range FIRST-LAST");
        if (end < start) return Invalid($"'{range}' ends before it starts");
        if (end >= size) return new(RangeKind.Unsatisfiable, 0, -1, $"bytes {start}-{end} lie beyond the volume's {size} bytes");
        return new(RangeKind.Satisfiable, start, end);
    }

    private static ByteRange Invalid(string reason) => new(RangeKind.Invalid, 0, -1, reason);

    private static bool TryNumber(string text, out long value) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
