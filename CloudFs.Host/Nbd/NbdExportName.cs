// An NBD export name as SPEC.md defines it: a volume (its 40-hex id or its name), or VOL@VERSION for one version of
// the volume, served read-only; either may end in #ATTACHMENT, a name the client gives its read-write attachment so
// that it can reconnect to it (docs/ATTACH.md, "Reconnecting"). Names are short printable ASCII; anything else names no
// export.
using System.Text;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

/// <param name="Attachment">The attachment's name after '#' (1-40 of A-Z a-z 0-9 . _ -), or null.</param>
internal readonly record struct NbdExportName(string Volume, Id160? Version, string? Attachment = null)
{
    /// <summary>Longest volume part: a 40-hex id, or a name (at most 40 characters).</summary>
    private const int MaxVolumeLength = 2 * Id160.Size;

    /// <summary>Longest attachment name.</summary>
    public const int MaxAttachmentLength = 40;

    /// <summary>The export <paramref name="name"/> designates, or null when it cannot name one (too long, not printable
    /// ASCII, a version that is not 40 hex characters, an empty or malformed attachment name). "" is the empty name (the
    /// only volume, when there is one).</summary>
    public static NbdExportName? Parse(ReadOnlySpan<byte> name)
    {
        string? attachment = null;
        var hash = name.LastIndexOf((byte)'#');
        if (hash >= 0)
        {
            var token = name[(hash + 1)..];
            if (token.Length is 0 or > MaxAttachmentLength || token.ContainsAnyExcept(AttachmentCharacters)) return null;
            attachment = Encoding.ASCII.GetString(token);
            name = name[..hash];
        }
        if (name.Length > MaxVolumeLength + 1 + 2 * Id160.Size || name.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E)) return null;
        var at = name.LastIndexOf((byte)'@');
        if (at < 0) return name.Length > MaxVolumeLength ? null : new NbdExportName(Encoding.ASCII.GetString(name), null, attachment);
        if (at == 0 || at > MaxVolumeLength || !Id160.TryParse(Encoding.ASCII.GetString(name[(at + 1)..]), out var version)) return null;
        return new NbdExportName(Encoding.ASCII.GetString(name[..at]), version, attachment);
    }

    private static readonly System.Buffers.SearchValues<byte> AttachmentCharacters =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"u8);
}
