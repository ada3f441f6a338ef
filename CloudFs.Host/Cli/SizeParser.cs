// Parses the sizes operators type (8G, 512M, 1T, 4096) into bytes; binary multiples, like qemu-img and truncate.
namespace CloudFs.Host.Cli;

internal static class SizeParser
{
    /// <summary>Accepts digits with an optional K/M/G/T/P suffix (optionally followed by "i", "B" or "iB"), case-insensitive.</summary>
    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim();
        var end = 0;
        while (end < s.Length && char.IsAsciiDigit(s[end])) end++;
        if (end == 0 || end > 18) return false;
        var number = long.Parse(s.AsSpan(0, end), System.Globalization.CultureInfo.InvariantCulture);
        var suffix = s[end..].ToUpperInvariant();
        if (suffix.EndsWith('B')) suffix = suffix[..^1];
        if (suffix.EndsWith('I')) suffix = suffix[..^1];
        int shift;
        switch (suffix)
        {
            case "": shift = 0; break;
            case "K": shift = 10; break;
            case "M": shift = 20; break;
            case "G": shift = 30; break;
            case "T": shift = 40; break;
            case "P": shift = 50; break;
            default: return false;
        }
        if (number > (long.MaxValue >> shift)) return false;
        bytes = number << shift;
        return true;
    }

    public static string Describe(long bytes) => bytes switch
    {
        _ when bytes >= 1L << 40 && bytes % (1L << 40) == 0 => $"{bytes >> 40}T",
        _ when bytes >= 1L << 30 && bytes % (1L << 30) == 0 => $"{bytes >> 30}G",
        _ when bytes >= 1L << 20 && bytes % (1L << 20) == 0 => $"{bytes >> 20}M",
        _ when bytes >= 1L << 10 && bytes % (1L << 10) == 0 => $"{bytes >> 10}K",
        _ => bytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>A size for people reading a table or a progress line: binary units, at most one decimal (`16 MiB`,
    /// `1.5 GiB`, `512 B`).</summary>
    public static string Human(double bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        var unit = 0;
        while (bytes >= 1024 && unit < units.Length - 1) { bytes /= 1024; unit++; }
        var text = unit == 0 || bytes >= 100 || bytes == Math.Floor(bytes)
            ? bytes.ToString("0", System.Globalization.CultureInfo.InvariantCulture)
            : bytes.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
        return $"{text} {units[unit]}";
    }
}
