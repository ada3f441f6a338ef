// An NBD export name as SPEC.md defines it: a volume (its 40-hex id or its name), or VOL@VERSION for one version of
// the volume, served read-only. Names are short printable ASCII; anything else names no export.
using System.Text;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

internal readonly record struct NbdExportName(string Volume, Id160? Version)
{
    /// <summary>Longest volume part: a 40-hex id, or a name (at most 40 characters).</summary>
    private const int MaxVolumeLength = 2 * Id160.Size;

    /// <summary>The export <paramref name="name"/> designates, or null when it cannot name one (too long, not printable
    /// ASCII, a version that is not 40 hex characters). "" is the empty name (the only volume, when there is one).</summary>
    public static NbdExportName? Parse(ReadOnlySpan<byte> name)
    {
        if (name.Length > MaxVolumeLength + 1 + 2 * Id160.Size || name.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E)) return null;
        var at = name.LastIndexOf((byte)'@');
        if (at < 0) return name.Length > MaxVolumeLength ? null : new NbdExportName(Encoding.ASCII.GetString(name), null);
        if (at == 0 || at > MaxVolumeLength || !Id160.TryParse(Encoding.ASCII.GetString(name[(at + 1)..]), out var version)) return null;
        return new NbdExportName(Encoding.ASCII.GetString(name[..at]), version);
    }
}
