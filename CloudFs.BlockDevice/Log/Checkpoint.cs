// A checkpoint: the roll-forward start, segment states and every volume's head, lsn table and index chain, in one
// CRC-protected payload written to the older of the two slots (docs/FORMAT.md, "Checkpoints").
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using CloudFs.BlockDevice.Index;

namespace CloudFs.BlockDevice.Log;

internal sealed record VolumeCheckpoint(
    Id160 BaseId, long SizeBytes, VolumeMode Mode, Id160[] Replicas, Id160? BranchedFrom,
    long Lsn, Id160 Version, Id160 HeadParent, Id160 HeadDigest, long OldestStreamableLsn,
    long[] LsnBlocks, ulong[] LsnPrefixes, long LsnCount, ExtentIndex Index)
{
    /// <summary>The committed view (0 and the base id before any view change); kept in the payload's view section.</summary>
    public long ViewNumber { get; init; }
    public Id160? View { get; init; }
    /// <summary>The ranges this host cannot serve; kept in the payload's damage section.</summary>
    public DamagedRange[] Damage { get; init; } = [];
    /// <summary>The name given at creation and when the volume went to the trash (0: not in it); the lifecycle section.</summary>
    public string? Name { get; init; }
    public long TrashedAtUnixMs { get; init; }
    /// <summary>Runs of lsns recovery skipped and no replica restored yet; the lost-entries section.</summary>
    public Volumes.LostEntries[] Lost { get; init; } = [];
    /// <summary>The protected versions (lsn, version) and the history base (null: none); the history section.</summary>
    public (long Lsn, Id160 Version)[] Protected { get; init; } = [];
    public Volumes.HistoryBase? History { get; init; }
    /// <summary>What each lsn's entry changed, as far as known (<see cref="LsnCount"/> of them, the rest unknown); the
    /// changes section. Null: all unknown.</summary>
    public Volumes.BlockChange[]? Changes { get; init; }
}

internal sealed record CheckpointData(ulong Generation, WriterPosition Position, SegmentState[] States, ulong[] Seqs, List<VolumeCheckpoint> Volumes);

internal static class Checkpoint
{
    public const int HeaderSize = 512;
    private static ReadOnlySpan<byte> Magic => "CFSCKPT1"u8;

    /// <summary>Serializes a checkpoint: slot header (512 bytes) followed by the payload.</summary>
    public static ArrayBufferWriter<byte> Encode(CheckpointData c, Guid deviceId)
    {
        var w = new ArrayBufferWriter<byte>(1 << 16);
        w.GetSpan(HeaderSize)[..HeaderSize].Clear();
        w.Advance(HeaderSize);
        I32(w, c.Position.Segment); U64(w, c.Position.Seq); I64(w, c.Position.Offset); U64(w, c.Position.NextSeq);
        I32(w, c.States.Length);
        for (var i = 0; i < c.States.Length; i++) { U8(w, (byte)c.States[i]); U64(w, c.Seqs[i]); }
        I32(w, c.Volumes.Count);
        foreach (var v in c.Volumes)
        {
            Id(w, v.BaseId); I64(w, v.SizeBytes); U8(w, (byte)v.Mode);
            U8(w, (byte)v.Replicas.Length);
            foreach (var r in v.Replicas) Id(w, r);
            U8(w, v.BranchedFrom is null ? (byte)0 : (byte)1);
            if (v.BranchedFrom is { } b) Id(w, b);
            I64(w, v.Lsn); Id(w, v.Version); Id(w, v.HeadParent); Id(w, v.HeadDigest); I64(w, v.OldestStreamableLsn);
            I64(w, v.LsnCount);
            w.Write(MemoryMarshal.AsBytes(v.LsnBlocks.AsSpan(0, (int)v.LsnCount)));
            w.Write(MemoryMarshal.AsBytes(v.LsnPrefixes.AsSpan(0, (int)v.LsnCount)));
            // The index chain from the root: a branch's parents are frozen snapshots that WriteTo does not include.
            var chain = new List<ExtentIndex>();
            for (var x = v.Index; x is not null; x = x.Parent) chain.Add(x);
            U8(w, (byte)chain.Count);
            for (var i = chain.Count - 1; i >= 0; i--)
            {
                var tmp = new ArrayBufferWriter<byte>();
                chain[i].WriteTo(tmp);
                I64(w, tmp.WrittenCount);
                w.Write(tmp.WrittenSpan);
            }
        }
        // The view section follows every volume, so a checkpoint written before it existed still reads (no views).
        I32(w, c.Volumes.Count);
        foreach (var v in c.Volumes) { Id(w, v.BaseId); I64(w, v.ViewNumber); Id(w, v.View ?? v.BaseId); }
        // The damage section, last for the same reason: older payloads read as no damage.
        I32(w, c.Volumes.Count);
        foreach (var v in c.Volumes)
        {
            Id(w, v.BaseId);
            I32(w, v.Damage.Length);
            foreach (var d in v.Damage)
            {
                I64(w, d.Offset); I64(w, d.Length);
                var reason = System.Text.Encoding.UTF8.GetBytes(d.Reason);
                I32(w, reason.Length);
                w.Write(reason);
            }
        }
        // The lifecycle section, last: older payloads read as no names and nothing in the trash.
        I32(w, c.Volumes.Count);
        foreach (var v in c.Volumes)
        {
            Id(w, v.BaseId);
            I64(w, v.TrashedAtUnixMs);
            var name = v.Name is null ? [] : System.Text.Encoding.ASCII.GetBytes(v.Name);
            U8(w, (byte)name.Length);
            w.Write(name);
        }
        // The lost-entries section, last: older payloads read as nothing lost.
        I32(w, c.Volumes.Count);
        foreach (var v in c.Volumes)
        {
            Id(w, v.BaseId);
            I32(w, v.Lost.Length);
            foreach (var l in v.Lost)
            {
                I64(w, l.FirstLsn); I64(w, l.LastLsn); Id(w, l.VersionBefore); Id(w, l.VersionLast);
                var reason = System.Text.Encoding.UTF8.GetBytes(l.Reason);
                I32(w, reason.Length);
                w.Write(reason);
            }
        }
        // The history section, last: older payloads read as nothing protected and no history base.
        I32(w, c.Volumes.Count);
        foreach (var v in c.Volumes)
        {
            Id(w, v.BaseId);
            I32(w, v.Protected.Length);
            foreach (var (lsn, version) in v.Protected) { I64(w, lsn); Id(w, version); }
            if (v.History is not { } b) { U8(w, 0); continue; }
            // 1: lsn 0; 3: a frozen index with its size (2, before sizes were kept, had none; an unknown size stays so);
            // 4: as 3 with the chain's state at the base (what a full resync as of the base sends; 3 did not keep it).
            var kind = b.Index is null ? (byte)1 : b.SizeBytes == Volumes.HistoryBase.UnknownSize ? (byte)2 : b.Chain is null ? (byte)3 : (byte)4;
            U8(w, kind);
            I64(w, b.Lsn); Id(w, b.Version);
            if (b.Index is null) continue;
            if (b.SizeBytes != Volumes.HistoryBase.UnknownSize) I64(w, b.SizeBytes);
            if (kind == 4)
            {
                var chain = b.Chain!;
                I64(w, chain.ViewNumber); Id(w, chain.View);
                U8(w, (byte)chain.Replicas.Length);
                foreach (var r in chain.Replicas) Id(w, r);
                I64(w, chain.TrashedAtUnixMs); Id(w, chain.HeadParent); Id(w, chain.HeadDigest); I64(w, b.HeldUntilLsn);
            }
            // The base's own level; its parents are the volume's (a branch's frozen parents, written above).
            var tmp = new ArrayBufferWriter<byte>();
            b.Index.WriteTo(tmp);
            I64(w, tmp.WrittenCount);
            w.Write(tmp.WrittenSpan);
        }
        // The changes section, last: older payloads read as every change unknown (a diff reads those headers once).
        I32(w, c.Volumes.Count);
        foreach (var v in c.Volumes)
        {
            Id(w, v.BaseId);
            var known = v.Changes is null ? 0 : v.LsnCount;
            I64(w, known);
            for (var i = 0; i < known; i++) Change(w, v.Changes![i]);
        }
        var all = w.WrittenMemory.Span;
        var payload = all[HeaderSize..];
        var h = MemoryMarshal.AsMemory(w.WrittenMemory).Span[..HeaderSize];
        Magic.CopyTo(h);
        deviceId.TryWriteBytes(h[8..]);
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], c.Generation);
        BinaryPrimitives.WriteInt64LittleEndian(h[32..], payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[40..], Format.Crc32C.Compute(payload));
        BinaryPrimitives.WriteUInt32LittleEndian(h[44..], Format.Crc32C.Compute(h[..44]));
        return w;
    }

    /// <summary>Reads the slot header: generation and payload length, or false when the slot holds no valid checkpoint.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> h, Guid deviceId, long slotSize, out ulong generation, out long payloadLength, out uint payloadCrc)
    {
        generation = 0; payloadLength = 0; payloadCrc = 0;
        if (!h[..8].SequenceEqual(Magic)) return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(h[44..]) != Format.Crc32C.Compute(h[..44])) return false;
        if (new Guid(h.Slice(8, 16)) != deviceId) return false;
        generation = BinaryPrimitives.ReadUInt64LittleEndian(h[24..]);
        payloadLength = BinaryPrimitives.ReadInt64LittleEndian(h[32..]);
        payloadCrc = BinaryPrimitives.ReadUInt32LittleEndian(h[40..]);
        return payloadLength > 0 && payloadLength <= slotSize - HeaderSize;
    }

    /// <summary>Parses a payload whose CRC was verified; still bounds-checks every length (throws FormatException).</summary>
    public static CheckpointData Decode(ulong generation, ReadOnlySpan<byte> p, int segmentCount)
    {
        var r = new Reader(p);
        var pos = new WriterPosition(r.I32(), r.U64(), r.I64(), r.U64());
        var n = r.I32();
        if (n != segmentCount) throw new FormatException("the checkpoint's segment count differs from the device's");
        var states = new SegmentState[n];
        var seqs = new ulong[n];
        for (var i = 0; i < n; i++) { states[i] = (SegmentState)r.U8(); seqs[i] = r.U64(); }
        var vols = new List<VolumeCheckpoint>();
        var vc = r.I32();
        for (var k = 0; k < vc; k++)
        {
            var baseId = r.Id(); var size = r.I64(); var mode = (VolumeMode)r.U8();
            var reps = new Id160[r.U8()];
            for (var i = 0; i < reps.Length; i++) reps[i] = r.Id();
            Id160? branched = r.U8() != 0 ? r.Id() : null;
            var lsn = r.I64(); var version = r.Id(); var parent = r.Id(); var digest = r.Id(); var oldest = r.I64();
            var count = r.I64();
            if (count != lsn || count < 0 || count > int.MaxValue) throw new FormatException("the checkpoint's lsn table does not match the head");
            var blocks = MemoryMarshal.Cast<byte, long>(r.Bytes(checked((int)count * 8))).ToArray();
            var prefixes = MemoryMarshal.Cast<byte, ulong>(r.Bytes(checked((int)count * 8))).ToArray();
            int depth = r.U8();
            if (depth < 1) throw new FormatException("a volume without an index");
            ExtentIndex? index = null;
            for (var d = 0; d < depth; d++)
            {
                var len = r.I64();
                if (len < 0 || len > int.MaxValue) throw new FormatException("a bad index length");
                var level = ExtentIndex.ReadFrom(r.Bytes((int)len), out _);
                if (index is null) { index = level; continue; }
                var child = index.Branch();
                foreach (var e in level.Enumerate()) child.Insert(e.Start, e.Count, e.LogBlock, e.EntryBlock);
                index = child;
            }
            vols.Add(new VolumeCheckpoint(baseId, size, mode, reps, branched, lsn, version, parent, digest, oldest, blocks, prefixes, count, index!));
        }
        if (r.Remaining > 0)
        {
            var views = r.I32();
            if (views != vols.Count) throw new FormatException("the checkpoint's view section does not match its volumes");
            for (var k = 0; k < views; k++)
            {
                var id = r.Id(); var number = r.I64(); var view = r.Id();
                if (id != vols[k].BaseId || number < 0) throw new FormatException("the checkpoint's view section is inconsistent");
                vols[k] = vols[k] with { ViewNumber = number, View = view };
            }
        }
        if (r.Remaining > 0)
        {
            var damaged = r.I32();
            if (damaged != vols.Count) throw new FormatException("the checkpoint's damage section does not match its volumes");
            for (var k = 0; k < damaged; k++)
            {
                if (r.Id() != vols[k].BaseId) throw new FormatException("the checkpoint's damage section is inconsistent");
                var count = r.I32();
                if (count < 0 || count > r.Remaining / 20) throw new FormatException("the checkpoint's damage section has a bad range count");
                var ranges = new DamagedRange[count];
                for (var i = 0; i < count; i++)
                {
                    var offset = r.I64(); var length = r.I64(); var len = r.I32();
                    if (offset < 0 || length <= 0 || len < 0) throw new FormatException("the checkpoint's damage section has a bad range");
                    ranges[i] = new DamagedRange(offset, length, System.Text.Encoding.UTF8.GetString(r.Bytes(len)));
                }
                vols[k] = vols[k] with { Damage = ranges };
            }
        }
        if (r.Remaining > 0)
        {
            var count = r.I32();
            if (count != vols.Count) throw new FormatException("the checkpoint's lifecycle section does not match its volumes");
            for (var k = 0; k < count; k++)
            {
                if (r.Id() != vols[k].BaseId) throw new FormatException("the checkpoint's lifecycle section is inconsistent");
                var trashed = r.I64();
                var len = r.U8();
                var bytes = r.Bytes(len);
                var name = len == 0 ? null
                    : CloudFs.BlockDevice.Volumes.VolumeName.Decode(bytes) ?? throw new FormatException("the checkpoint's lifecycle section holds a bad name");
                if (trashed < 0) throw new FormatException("the checkpoint's lifecycle section has a bad trash time");
                vols[k] = vols[k] with { TrashedAtUnixMs = trashed, Name = name };
            }
        }
        if (r.Remaining > 0)
        {
            var count = r.I32();
            if (count != vols.Count) throw new FormatException("the checkpoint's lost-entries section does not match its volumes");
            for (var k = 0; k < count; k++)
            {
                if (r.Id() != vols[k].BaseId) throw new FormatException("the checkpoint's lost-entries section is inconsistent");
                var runs = r.I32();
                if (runs < 0 || runs > r.Remaining / 60) throw new FormatException("the checkpoint's lost-entries section has a bad run count");
                var lost = new Volumes.LostEntries[runs];
                for (var i = 0; i < runs; i++)
                {
                    var first = r.I64(); var last = r.I64(); var before = r.Id(); var after = r.Id(); var len = r.I32();
                    if (first < 2 || last < first || last >= vols[k].Lsn || len < 0)
                        throw new FormatException("the checkpoint's lost-entries section has a bad run");
                    lost[i] = new Volumes.LostEntries(first, last, before, after, System.Text.Encoding.UTF8.GetString(r.Bytes(len)));
                }
                vols[k] = vols[k] with { Lost = lost };
            }
        }
        if (r.Remaining > 0)
        {
            var count = r.I32();
            if (count != vols.Count) throw new FormatException("the checkpoint's history section does not match its volumes");
            for (var k = 0; k < count; k++)
            {
                if (r.Id() != vols[k].BaseId) throw new FormatException("the checkpoint's history section is inconsistent");
                var protections = r.I32();
                if (protections < 0 || protections > r.Remaining / 28) throw new FormatException("the checkpoint's history section has a bad protection count");
                var prot = new (long, Id160)[protections];
                for (var i = 0; i < protections; i++)
                {
                    var lsn = r.I64();
                    if (lsn < 1 || lsn > vols[k].Lsn) throw new FormatException("the checkpoint's history section protects a bad lsn");
                    prot[i] = (lsn, r.Id());
                }
                Volumes.HistoryBase? history = null;
                var has = r.U8();
                if (has > 4) throw new FormatException("the checkpoint's history section has a bad base");
                if (has != 0)
                {
                    var lsn = r.I64(); var version = r.Id();
                    if (lsn < 0 || lsn > vols[k].Lsn) throw new FormatException("the checkpoint's history section has a bad base lsn");
                    ExtentIndex? index = null;
                    var size = has == 1 ? 0 : Volumes.HistoryBase.UnknownSize;
                    Volumes.BaseChainState? chain = null;
                    long heldUntil = 0;
                    if (has >= 3)
                    {
                        size = r.I64();
                        if (size <= 0 || size % LogStore.BlockSize != 0) throw new FormatException("the checkpoint's history section has a bad base size");
                    }
                    if (has == 4)
                    {
                        var number = r.I64(); var view = r.Id();
                        var reps = new Id160[r.U8()];
                        if (reps.Length > Volumes.CreatePayload.MaxReplicas) throw new FormatException("the checkpoint's history section has a bad replica count");
                        for (var i = 0; i < reps.Length; i++) reps[i] = r.Id();
                        var trashed = r.I64(); var parent = r.Id(); var digest = r.Id();
                        heldUntil = r.I64();
                        if (number < 0 || (number == 0) != (view == vols[k].BaseId) || trashed < 0 || heldUntil < 0)
                            throw new FormatException("the checkpoint's history section has a bad base state");
                        chain = new Volumes.BaseChainState(number, view, reps, trashed, parent, digest);
                    }
                    if (has >= 2)
                    {
                        var len = r.I64();
                        if (len < 0 || len > int.MaxValue) throw new FormatException("a bad index length");
                        var level = ExtentIndex.ReadFrom(r.Bytes((int)len), out _);
                        var built = vols[k].Index.Parent is { } parent ? parent.Branch() : new ExtentIndex();
                        foreach (var e in level.Enumerate()) built.Insert(e.Start, e.Count, e.LogBlock, e.EntryBlock);
                        index = built.Snapshot();
                    }
                    history = new Volumes.HistoryBase(lsn, version, index, size) { Chain = chain, HeldUntilLsn = heldUntil };
                }
                vols[k] = vols[k] with { Protected = prot, History = history };
            }
        }
        if (r.Remaining > 0)
        {
            var count = r.I32();
            if (count != vols.Count) throw new FormatException("the checkpoint's changes section does not match its volumes");
            for (var k = 0; k < count; k++)
            {
                if (r.Id() != vols[k].BaseId) throw new FormatException("the checkpoint's changes section is inconsistent");
                var known = r.I64();
                if (known != 0 && known != vols[k].LsnCount) throw new FormatException("the checkpoint's changes section does not match the lsn table");
                if (known == 0) continue;
                var changes = new Volumes.BlockChange[known];
                for (var i = 0; i < known; i++) changes[i] = r.Change();
                vols[k] = vols[k] with { Changes = changes };
            }
        }
        return new CheckpointData(generation, pos, states, seqs, vols);
    }

    private static void U8(ArrayBufferWriter<byte> w, byte v) { w.GetSpan(1)[0] = v; w.Advance(1); }
    private static void I32(ArrayBufferWriter<byte> w, int v) { BinaryPrimitives.WriteInt32LittleEndian(w.GetSpan(4), v); w.Advance(4); }
    private static void I64(ArrayBufferWriter<byte> w, long v) { BinaryPrimitives.WriteInt64LittleEndian(w.GetSpan(8), v); w.Advance(8); }
    private static void U64(ArrayBufferWriter<byte> w, ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(w.GetSpan(8), v); w.Advance(8); }
    private static void Id(ArrayBufferWriter<byte> w, Id160 v) { v.WriteTo(w.GetSpan(Id160.Size)); w.Advance(Id160.Size); }

    /// <summary>One lsn's change: u8 0 unknown, 1 none, 2 a range (then first block and count as LEB128 varints).</summary>
    private static void Change(ArrayBufferWriter<byte> w, Volumes.BlockChange c)
    {
        if (!c.IsKnown) { U8(w, 0); return; }
        if (c.Count == 0) { U8(w, 1); return; }
        U8(w, 2); Varint(w, (ulong)c.First); Varint(w, (ulong)c.Count);
    }

    private static void Varint(ArrayBufferWriter<byte> w, ulong v)
    {
        var span = w.GetSpan(10);
        var n = 0;
        for (; v >= 0x80; v >>= 7) span[n++] = (byte)(v | 0x80);
        span[n++] = (byte)v;
        w.Advance(n);
    }

    private ref struct Reader(ReadOnlySpan<byte> s)
    {
        private ReadOnlySpan<byte> _s = s;
        public int Remaining => _s.Length;
        public ReadOnlySpan<byte> Bytes(int n)
        {
            if (n < 0 || n > _s.Length) throw new FormatException("the checkpoint payload is truncated");
            var r = _s[..n];
            _s = _s[n..];
            return r;
        }
        public byte U8() => Bytes(1)[0];
        public int I32() => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4));
        public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8));
        public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8));
        public Id160 Id() => new(Bytes(Id160.Size));
        public ulong Varint()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = U8();
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return v;
            }
            throw new FormatException("a bad varint in the checkpoint");
        }
        public Volumes.BlockChange Change()
        {
            switch (U8())
            {
                case 0: return Volumes.BlockChange.Unknown;
                case 1: return Volumes.BlockChange.None;
                case 2:
                    var first = Varint(); var count = Varint();
                    if (first > long.MaxValue / 2 || count > long.MaxValue / 2) throw new FormatException("the checkpoint's changes section has a bad range");
                    return new Volumes.BlockChange((long)first, (long)count);
                default: throw new FormatException("the checkpoint's changes section has a bad tag");
            }
        }
    }
}
