// The view in force at an entry of a volume's chain: its number, the version of the view-change entry that began it
// (the base id before the first view change) and its replica set; with the size, trash state and protected versions at
// that entry. A fork
// split rewinds a volume to the view of the entry it keeps, derived from the chain's headers 1..k (docs/FORMAT.md,
// "Fork splits").
namespace CloudFs.BlockDevice.Volumes;

internal sealed record VolumeView(long Number, Id160 Version, Id160[] Replicas)
{
    /// <summary>The volume's size at the entry (creation, then each resize entry).</summary>
    public long SizeBytes { get; init; }
    /// <summary>The time of the trash entry in force at the entry (0: not in the trash).</summary>
    public long TrashedAtUnixMs { get; init; }
    /// <summary>The protected versions at the entry (lsn, version), in lsn order: what the protect entries up to it left
    /// (LogStore.ApplyProtection's rule). A rewind to the entry takes back what protect entries after it did.</summary>
    public (long Lsn, Id160 Version)[] Protected { get; init; } = [];

    /// <summary>
    /// The view after entry <paramref name="h"/> (whose header and payload are in <paramref name="meta"/>), given the
    /// view before it (null before the creation entry): a creation or branch entry begins view 0, a view change the
    /// view it names (its own number, whatever came before: replay adopts it the same way); lifecycle entries change the
    /// size or trash state; any other entry keeps it.
    /// </summary>
    public static VolumeView? After(VolumeView? before, Format.EntryHeader h, ReadOnlySpan<byte> meta)
    {
        var payload = meta.Slice(Format.EntryHeader.OffBitmap, h.PayloadLength);
        switch (h.Kind)
        {
            case EntryKind.Create or EntryKind.Branch:
                return CreatePayload.Decode(payload, h.Kind == EntryKind.Branch) is { } c
                    ? new VolumeView(0, h.Volume, c.Replicas) { SizeBytes = c.SizeBytes }
                    : null;
            case EntryKind.ViewChange:
                return ViewChangePayload.Decode(payload) is { } v && before is not null
                    ? before with { Number = v.ViewNumber, Version = h.Version, Replicas = v.Replicas }
                    : null;
            case EntryKind.Resize:
                return ResizePayload.Decode(payload) is { } r && before is not null ? before with { SizeBytes = r.NewSize } : null;
            case EntryKind.Trash:
                return before is null ? null : before with { TrashedAtUnixMs = Math.Max(1, h.TimestampUnixMs) };
            case EntryKind.Restore:
                return before is null ? null : before with { TrashedAtUnixMs = 0 };
            case EntryKind.Protect:
                if (ProtectionPayload.Decode(payload, h.Lsn) is not { } p || before is null) return null;
                var others = before.Protected.Where(x => x.Lsn != p.Lsn);
                if (p.Protect) return before with { Protected = [.. others.Append((p.Lsn, p.Version)).OrderBy(x => x.Lsn)] };
                // Unprotecting takes out only the version it names (as applying it does).
                return before.Protected.Contains((p.Lsn, p.Version)) ? before with { Protected = [.. others] } : before;
            default:
                return before;
        }
    }
}
