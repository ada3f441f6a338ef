// The one stored block of a resync commit entry: everything a replica needs to hold a volume at an lsn whose history
// it never had (docs/FORMAT.md, "Full resync"), and the totals that prove every piece before it arrived. After the
// replica ids: i64 trash time (0: not in the trash), u8 name length, the name, i64 the lsn the receiver keeps its history
// base at the resync's lsn until (0: the resync is not as of a history base); zeros (as older builds wrote) = none.
using System.Buffers.Binary;

namespace CloudFs.BlockDevice.Volumes;

internal sealed record ResyncManifest(
    long SizeBytes, VolumeMode Mode, Id160[] Replicas, Id160? BranchedFrom, long ViewNumber, Id160 View,
    Id160 HeadParent, Id160 HeadDigest, long Pieces, long StoredBlocks, Id160 PiecesDigest)
{
    public const byte Version = 1;
    private const int Fixed = 136;

    /// <summary>The name given at creation (null for none).</summary>
    public string? Name { get; init; }
    /// <summary>When the volume went to the trash (Unix ms), 0 while it is not in the trash.</summary>
    public long TrashedAtUnixMs { get; init; }
    /// <summary>0: the resync is as of the sender's head and carries no history. Otherwise it is as of the sender's
    /// history base: the receiver's history base is the resync's lsn, held there until its head reaches this lsn (the
    /// sender's head when the transfer began, at or after the resync's lsn; <see cref="HistoryBase.HeldUntilLsn"/>).</summary>
    public long BaseHeldUntilLsn { get; init; }

    public void Encode(Span<byte> block)
    {
        block.Clear();
        block[0] = Version;
        block[1] = (byte)Mode;
        block[2] = (byte)Replicas.Length;
        block[3] = BranchedFrom is null ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteInt64LittleEndian(block[4..], SizeBytes);
        BinaryPrimitives.WriteInt64LittleEndian(block[12..], ViewNumber);
        BinaryPrimitives.WriteInt64LittleEndian(block[20..], Pieces);
        BinaryPrimitives.WriteInt64LittleEndian(block[28..], StoredBlocks);
        PiecesDigest.WriteTo(block[36..]);
        HeadParent.WriteTo(block[56..]);
        HeadDigest.WriteTo(block[76..]);
        View.WriteTo(block[96..]);
        (BranchedFrom ?? Id160.Zero).WriteTo(block[116..]);
        for (var i = 0; i < Replicas.Length; i++) Replicas[i].WriteTo(block[(Fixed + i * Id160.Size)..]);
        var o = Fixed + Replicas.Length * Id160.Size;
        BinaryPrimitives.WriteInt64LittleEndian(block[o..], TrashedAtUnixMs);
        var name = Name is null ? [] : System.Text.Encoding.ASCII.GetBytes(Name);
        block[o + 8] = (byte)name.Length;
        name.CopyTo(block[(o + 9)..]);
        BinaryPrimitives.WriteInt64LittleEndian(block[(o + 9 + name.Length)..], BaseHeldUntilLsn);
    }

    /// <summary>Null when the block is not a manifest this version understands (bounds, counts, flags).</summary>
    public static ResyncManifest? Decode(ReadOnlySpan<byte> block)
    {
        if (block.Length < LogStore.BlockSize || block[0] != Version || block[1] > 1 || block[3] > 1) return null;
        int n = block[2];
        if (n > CreatePayload.MaxReplicas) return null;
        var size = BinaryPrimitives.ReadInt64LittleEndian(block[4..]);
        var view = BinaryPrimitives.ReadInt64LittleEndian(block[12..]);
        var pieces = BinaryPrimitives.ReadInt64LittleEndian(block[20..]);
        var stored = BinaryPrimitives.ReadInt64LittleEndian(block[28..]);
        if (size <= 0 || size % LogStore.BlockSize != 0 || view < 0 || pieces < 0 || stored < 0) return null;
        var o = Fixed + n * Id160.Size;
        var trashed = BinaryPrimitives.ReadInt64LittleEndian(block[o..]);
        int nameLength = block[o + 8];
        if (trashed < 0 || nameLength > VolumeName.MaxLength) return null;
        var name = nameLength == 0 ? null : VolumeName.Decode(block.Slice(o + 9, nameLength));
        if (nameLength > 0 && name is null) return null;
        var held = BinaryPrimitives.ReadInt64LittleEndian(block[(o + 9 + nameLength)..]);
        if (held < 0 || block[(o + 17 + nameLength)..LogStore.BlockSize].ContainsAnyExcept((byte)0)) return null;
        var reps = new Id160[n];
        for (var i = 0; i < n; i++) reps[i] = new Id160(block[(Fixed + i * Id160.Size)..]);
        Id160? branched = block[3] == 1 ? new Id160(block[116..]) : null;
        return new ResyncManifest(size, (VolumeMode)block[1], reps, branched, view, new Id160(block[96..]),
            new Id160(block[56..]), new Id160(block[76..]), pieces, stored, new Id160(block[36..]))
        {
            Name = name,
            TrashedAtUnixMs = trashed,
            BaseHeldUntilLsn = held,
        };
    }

    /// <summary>The running digest over the pieces of a transfer: d = H(d ‖ piece digest), in order, from zero.</summary>
    public static Id160 Chain(Id160 digest, Id160 pieceDigest)
    {
        Span<byte> b = stackalloc byte[2 * Id160.Size];
        digest.WriteTo(b);
        pieceDigest.WriteTo(b[Id160.Size..]);
        return Id160.Hash(b);
    }
}
