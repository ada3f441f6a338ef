// Binary serializer for the data-plane (volume commands, queries, replies): short constant manifests,
// little-endian fields with BinaryPrimitives, block data copied exactly once into the outgoing frame.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Volumes;
using CloudFs.Actors.Volumes.Commands;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Serialization;

public sealed class VolumeMessageSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 4612;

    private const string WriteManifest = "W";
    private const string WriteZeroesManifest = "Z";
    private const string FlushManifest = "F";
    private const string AckManifest = "A";
    private const string ReadManifest = "R";
    private const string ReadResultManifest = "RR";
    private const string MapManifest = "M";
    private const string MapResultManifest = "MR";
    private const string ChangedSinceManifest = "C";
    private const string ChangedSinceResultManifest = "CS";
    private const string ReadVersionManifest = "RV";
    private const string VersionSizeManifest = "VZ";
    private const string VersionSizeResultManifest = "VZR";
    private const string FailureManifest = "X";
    private const string StatusManifest = "S";
    private const string StatusResultManifest = "SR";
    private const string ReplicaAckManifest = "RA";
    private const string ReplicaFeedEndedManifest = "RE";
    private const string ChangeReplicasManifest = "CR";
    private const string ChangeLifecycleManifest = "CL";
    private const string ChangeProtectionManifest = "CP";
    private const string ReadResyncManifest = "RS";
    private const string ResyncPieceManifest = "RP";
    private const string ReadForRepairManifest = "FR";
    private const string ReplicaCopyManifest = "FC";
    private const string ReadLostEntriesManifest = "FL";
    private const string LostEntriesCopyManifest = "FE";
    // An envelope: this, then its message's manifest; its bytes the host id, then its message's.
    private const string EnvelopePrefix = "E";

    private const int IdSize = Id160.Size;
    private const int MappedRangeSize = 17;

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        VolumeEnvelope e => EnvelopeManifest(e.Message),
        Write => WriteManifest,
        WriteZeroes => WriteZeroesManifest,
        Flush => FlushManifest,
        VolumeAck => AckManifest,
        Read => ReadManifest,
        ReadResult => ReadResultManifest,
        Map => MapManifest,
        MapResult => MapResultManifest,
        ChangedSince => ChangedSinceManifest,
        ChangedSinceResult => ChangedSinceResultManifest,
        ReadVersion => ReadVersionManifest,
        VersionSize => VersionSizeManifest,
        VersionSizeResult => VersionSizeResultManifest,
        VolumeFailure => FailureManifest,
        GetVolumeStatus => StatusManifest,
        VolumeStatus => StatusResultManifest,
        ReplicaAck => ReplicaAckManifest,
        ReplicaFeedEnded => ReplicaFeedEndedManifest,
        ChangeReplicaSet => ChangeReplicasManifest,
        ChangeLifecycle => ChangeLifecycleManifest,
        ChangeProtection => ChangeProtectionManifest,
        ReadResync => ReadResyncManifest,
        ResyncPiece => ResyncPieceManifest,
        ReadForRepair => ReadForRepairManifest,
        ReplicaCopy => ReplicaCopyManifest,
        ReadLostEntries => ReadLostEntriesManifest,
        LostEntriesCopy => LostEntriesCopyManifest,
        _ => throw Unknown(o.GetType().FullName),
    };

    public override byte[] ToBinary(object obj) => obj switch
    {
        VolumeEnvelope e => EnvelopeToBinary(e),
        Write m => WriteToBinary(m),
        WriteZeroes m => Fixed(IdSize + 33, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            BinaryPrimitives.WriteInt64LittleEndian(s[IdSize..], m.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 8)..], m.Length);
            s[IdSize + 16] = m.Fua ? (byte)1 : (byte)0;
            BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 17)..], m.RequestId);
            BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 25)..], m.Attachment);
        }),
        Flush m => Fixed(IdSize + 8, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            BinaryPrimitives.WriteInt64LittleEndian(s[IdSize..], m.Attachment);
        }),
        VolumeAck m => Fixed(8, m, static (s, m) => BinaryPrimitives.WriteInt64LittleEndian(s, m.Lsn)),
        Read m => Fixed(IdSize + 12, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            BinaryPrimitives.WriteInt64LittleEndian(s[IdSize..], m.Offset);
            BinaryPrimitives.WriteInt32LittleEndian(s[(IdSize + 8)..], m.Length);
        }),
        ReadResult m => ReadResultToBinary(m),
        Map m => Fixed(IdSize + 16, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            BinaryPrimitives.WriteInt64LittleEndian(s[IdSize..], m.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 8)..], m.Length);
        }),
        MapResult m => MapResultToBinary(m),
        ChangedSince m => Fixed(3 * IdSize + 17, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            m.Since.WriteTo(s[IdSize..]);
            s[2 * IdSize] = m.Until is null ? (byte)0 : (byte)1;
            (m.Until ?? Id160.Zero).WriteTo(s[(2 * IdSize + 1)..]);
            BinaryPrimitives.WriteInt64LittleEndian(s[(3 * IdSize + 1)..], m.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(s[(3 * IdSize + 9)..], m.Length);
        }),
        ChangedSinceResult m => ChangedSinceResultToBinary(m),
        ReadVersion m => Fixed(2 * IdSize + 12, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            m.Version.WriteTo(s[IdSize..]);
            BinaryPrimitives.WriteInt64LittleEndian(s[(2 * IdSize)..], m.Offset);
            BinaryPrimitives.WriteInt32LittleEndian(s[(2 * IdSize + 8)..], m.Length);
        }),
        VersionSize m => Fixed(2 * IdSize, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            m.Version.WriteTo(s[IdSize..]);
        }),
        VersionSizeResult m => Fixed(8, m, static (s, m) => BinaryPrimitives.WriteInt64LittleEndian(s, m.SizeBytes)),
        VolumeFailure m => FailureToBinary(m),
        GetVolumeStatus m => m.VolumeId.ToArray(),
        VolumeStatus m => Fixed(18, m, static (s, m) =>
        {
            BinaryPrimitives.WriteInt64LittleEndian(s, m.Lsn);
            s[8] = m.Exists ? (byte)1 : (byte)0;
            s[9] = m.RecoveredFromHead ? (byte)1 : (byte)0;
            BinaryPrimitives.WriteInt64LittleEndian(s[10..], m.ReplayedHeaders);
        }),
        ReplicaAck m => Fixed(2 * IdSize + 24, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            m.Host.WriteTo(s[IdSize..]);
            BinaryPrimitives.WriteInt64LittleEndian(s[(2 * IdSize)..], m.Lsn);
            BinaryPrimitives.WriteInt64LittleEndian(s[(2 * IdSize + 8)..], m.DurableLsn);
            BinaryPrimitives.WriteInt64LittleEndian(s[(2 * IdSize + 16)..], m.Feed);
        }),
        ReplicaFeedEnded m => Fixed(2 * IdSize + 8, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            m.Host.WriteTo(s[IdSize..]);
            BinaryPrimitives.WriteInt64LittleEndian(s[(2 * IdSize)..], m.Feed);
        }),
        ChangeReplicaSet m => ChangeReplicasToBinary(m),
        ChangeLifecycle m => Fixed(IdSize + 10, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            s[IdSize] = (byte)m.Change;
            BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 1)..], m.SizeBytes);
            s[IdSize + 9] = m.AllowShrink ? (byte)1 : (byte)0;
        }),
        ChangeProtection m => Fixed(2 * IdSize + 1, m, static (s, m) =>
        {
            m.VolumeId.WriteTo(s);
            m.Version.WriteTo(s[IdSize..]);
            s[2 * IdSize] = m.Protect ? (byte)1 : (byte)0;
        }),
        ReadResync m => Fixed(2 * IdSize + 16, m, static (s, m) =>
        {
            m.Volume.WriteTo(s);
            m.Transfer.WriteTo(s[IdSize..]);
            BinaryPrimitives.WriteInt64LittleEndian(s[(2 * IdSize)..], m.FromBlock);
            BinaryPrimitives.WriteInt32LittleEndian(s[(2 * IdSize + 8)..], m.MaxBytes);
            BinaryPrimitives.WriteInt32LittleEndian(s[(2 * IdSize + 12)..], m.MaxEntryBlocks);
        }),
        ResyncPiece m => ResyncPieceToBinary(m),
        ReadForRepair m => Fixed(2 * IdSize + 20, m, static (s, m) =>
        {
            m.Volume.WriteTo(s);
            BinaryPrimitives.WriteInt64LittleEndian(s[IdSize..], m.Offset);
            BinaryPrimitives.WriteInt32LittleEndian(s[(IdSize + 8)..], m.Length);
            BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 12)..], m.AskerLsn);
            m.AskerVersion.WriteTo(s[(IdSize + 20)..]);
        }),
        ReplicaCopy m => ReplicaCopyToBinary(m),
        ReadLostEntries m => Fixed(IdSize + 16, m, static (s, m) =>
        {
            m.Volume.WriteTo(s);
            BinaryPrimitives.WriteInt64LittleEndian(s[IdSize..], m.FirstLsn);
            BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 8)..], m.LastLsn);
        }),
        // The entries are the whole message: an array that is the copy goes out as it is.
        LostEntriesCopy m => MemoryMarshal.TryGetArray(m.Entries, out var whole) && whole.Offset == 0 && whole.Count == whole.Array!.Length
            ? whole.Array
            : m.Entries.ToArray(),
        _ => throw Unknown(obj.GetType().FullName),
    };

    public override object FromBinary(byte[] bytes, string manifest)
    {
        try
        {
            if (manifest.Length > EnvelopePrefix.Length && manifest.StartsWith(EnvelopePrefix, StringComparison.Ordinal))
                return EnvelopeFromBinary(bytes, manifest[EnvelopePrefix.Length..]);
            return manifest switch
            {
                WriteManifest => WriteFromBinary(bytes, 0),
                WriteZeroesManifest => new WriteZeroes(new Id160(Exact(bytes, IdSize + 33)), I64(bytes, IdSize), I64(bytes, IdSize + 8), Bool(bytes, IdSize + 16))
                    { RequestId = I64(bytes, IdSize + 17), Attachment = I64(bytes, IdSize + 25) },
                FlushManifest => new Flush(new Id160(Exact(bytes, IdSize + 8))) { Attachment = I64(bytes, IdSize) },
                AckManifest => new VolumeAck(I64(Exact(bytes, 8), 0)),
                ReadManifest => new Read(new Id160(Exact(bytes, IdSize + 12)), I64(bytes, IdSize), I32(bytes, IdSize + 8)),
                ReadResultManifest => new ReadResult(bytes),
                MapManifest => new Map(new Id160(Exact(bytes, IdSize + 16)), I64(bytes, IdSize), I64(bytes, IdSize + 8)),
                MapResultManifest => MapResultFromBinary(bytes),
                ChangedSinceManifest => new ChangedSince(new Id160(Exact(bytes, 3 * IdSize + 17)), new Id160(bytes.AsSpan(IdSize)),
                    Bool(bytes, 2 * IdSize) ? new Id160(bytes.AsSpan(2 * IdSize + 1)) : null, I64(bytes, 3 * IdSize + 1), I64(bytes, 3 * IdSize + 9)),
                ChangedSinceResultManifest => ChangedSinceResultFromBinary(bytes),
                ReadVersionManifest => new ReadVersion(new Id160(Exact(bytes, 2 * IdSize + 12)), new Id160(bytes.AsSpan(IdSize)), I64(bytes, 2 * IdSize), I32(bytes, 2 * IdSize + 8)),
                VersionSizeManifest => new VersionSize(new Id160(Exact(bytes, 2 * IdSize)), new Id160(bytes.AsSpan(IdSize))),
                VersionSizeResultManifest => new VersionSizeResult(I64(Exact(bytes, 8), 0)),
                FailureManifest => FailureFromBinary(bytes),
                StatusManifest => new GetVolumeStatus(new Id160(Exact(bytes, IdSize))),
                StatusResultManifest => new VolumeStatus(I64(Exact(bytes, 18), 0), Bool(bytes, 8), Bool(bytes, 9), I64(bytes, 10)),
                ChangeReplicasManifest => ChangeReplicasFromBinary(bytes),
                ChangeLifecycleManifest => ChangeLifecycleFromBinary(bytes),
                ChangeProtectionManifest => new ChangeProtection(new Id160(Exact(bytes, 2 * IdSize + 1)), new Id160(bytes.AsSpan(IdSize)), Bool(bytes, 2 * IdSize)),
                ReadResyncManifest => new ReadResync(new Id160(Exact(bytes, 2 * IdSize + 16)), new Id160(bytes.AsSpan(IdSize)),
                    I64(bytes, 2 * IdSize), I32(bytes, 2 * IdSize + 8), I32(bytes, 2 * IdSize + 12)),
                ResyncPieceManifest => bytes.Length < ResyncPieceHeader
                    ? throw new SerializationException($"a resync piece of {bytes.Length} bytes is too short")
                    : new ResyncPiece(new Id160(bytes), I64(bytes, IdSize), I64(bytes, IdSize + 8), Bool(bytes, IdSize + 16), bytes.AsMemory(ResyncPieceHeader)),
                ReadForRepairManifest => new ReadForRepair(new Id160(Exact(bytes, 2 * IdSize + 20)), I64(bytes, IdSize), I32(bytes, IdSize + 8),
                    I64(bytes, IdSize + 12), new Id160(bytes.AsSpan(IdSize + 20))),
                ReplicaCopyManifest => bytes.Length < ReplicaCopyHeader
                    ? throw new SerializationException($"a replica copy of {bytes.Length} bytes is too short")
                    : new ReplicaCopy(I64(bytes, 0), new Id160(bytes.AsSpan(8)), Bool(bytes, 8 + IdSize), I64(bytes, 9 + IdSize), bytes.AsMemory(ReplicaCopyHeader)),
                ReadLostEntriesManifest => new ReadLostEntries(new Id160(Exact(bytes, IdSize + 16)), I64(bytes, IdSize), I64(bytes, IdSize + 8)),
                LostEntriesCopyManifest => new LostEntriesCopy(bytes),
                ReplicaAckManifest => new ReplicaAck(new Id160(Exact(bytes, 2 * IdSize + 24)), new Id160(bytes.AsSpan(IdSize)), I64(bytes, 2 * IdSize + 16),
                    I64(bytes, 2 * IdSize), I64(bytes, 2 * IdSize + 8)),
                ReplicaFeedEndedManifest => new ReplicaFeedEnded(new Id160(Exact(bytes, 2 * IdSize + 8)), new Id160(bytes.AsSpan(IdSize)), I64(bytes, 2 * IdSize)),
                _ => throw Unknown($"manifest '{manifest}'"),
            };
        }
        catch (Exception e) when (e is ArgumentException or ArgumentOutOfRangeException or IndexOutOfRangeException or DecoderFallbackException)
        {
            throw new SerializationException($"a volume message with manifest '{manifest}' is malformed ({bytes.Length} bytes)", e);
        }
    }

    // Volume id, offset, FUA flag, request id; then the block data.
    private const int WriteHeader = IdSize + 25;

    // The one copy of the block data: into the frame, right after the fixed header (and the envelope's host before it).
    private static byte[] WriteToBinary(Write m, Id160? host = null)
    {
        var at = host is null ? 0 : IdSize;
        var buffer = GC.AllocateUninitializedArray<byte>(at + WriteHeader + m.Data.Length);
        host?.WriteTo(buffer);
        var s = buffer.AsSpan(at);
        m.VolumeId.WriteTo(s);
        BinaryPrimitives.WriteInt64LittleEndian(s[IdSize..], m.Offset);
        s[IdSize + 8] = m.Fua ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 9)..], m.RequestId);
        BinaryPrimitives.WriteInt64LittleEndian(s[(IdSize + 17)..], m.Attachment);
        m.Data.Span.CopyTo(s[WriteHeader..]);
        return buffer;
    }

    private static Write WriteFromBinary(byte[] bytes, int at) => bytes.Length - at < WriteHeader
        ? throw new SerializationException($"a write of {bytes.Length - at} bytes is too short")
        : new Write(new Id160(bytes.AsSpan(at)), I64(bytes, at + IdSize), bytes.AsMemory(at + WriteHeader), Bool(bytes, at + IdSize + 8))
            { RequestId = I64(bytes, at + IdSize + 9), Attachment = I64(bytes, at + IdSize + 17) };

    // An envelope may carry a message another serializer owns (a control message to the volume's writer, such as an
    // attachment lease's): its manifest is then "#<serializer id>:<that serializer's manifest>".
    private const string ForeignPrefix = "#";

    private string EnvelopeManifest(IWithVolumeId message)
    {
        if (message is IVolumeProtocolMessage) return EnvelopePrefix + Manifest(message);
        var serializer = system.Serialization.FindSerializerFor(message);
        return $"{EnvelopePrefix}{ForeignPrefix}{serializer.Identifier}:{Akka.Serialization.Serialization.ManifestFor(serializer, message)}";
    }

    // A write's data is still copied once (after the host); the other messages are small.
    private byte[] EnvelopeToBinary(VolumeEnvelope e)
    {
        if (e.Message is Write w) return WriteToBinary(w, e.Host);
        var inner = e.Message is IVolumeProtocolMessage ? ToBinary(e.Message) : system.Serialization.FindSerializerFor(e.Message).ToBinary(e.Message);
        var buffer = new byte[IdSize + inner.Length];
        e.Host.WriteTo(buffer);
        inner.CopyTo(buffer.AsSpan(IdSize));
        return buffer;
    }

    private VolumeEnvelope EnvelopeFromBinary(byte[] bytes, string inner)
    {
        if (bytes.Length < IdSize) throw new SerializationException($"a volume envelope of {bytes.Length} bytes is too short");
        var host = new Id160(bytes);
        var message = inner == WriteManifest ? WriteFromBinary(bytes, IdSize)
            : inner.StartsWith(ForeignPrefix, StringComparison.Ordinal) ? ForeignFromBinary(bytes[IdSize..], inner[ForeignPrefix.Length..])
            : FromBinary(bytes[IdSize..], inner);
        return new VolumeEnvelope(host, message as IWithVolumeId
            ?? throw new SerializationException($"a volume envelope holds {message.GetType().Name}, which is not addressed to a volume"));
    }

    private object ForeignFromBinary(byte[] bytes, string idAndManifest)
    {
        var colon = idAndManifest.IndexOf(':');
        if (colon <= 0 || !int.TryParse(idAndManifest.AsSpan(0, colon), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
            throw new SerializationException($"a volume envelope names its message's serializer as '{idAndManifest}'");
        return system.Serialization.Deserialize(bytes, id, idAndManifest[(colon + 1)..]);
    }

    // A reply that owns a whole array goes out as is; a slice is copied once.
    private static byte[] ReadResultToBinary(ReadResult m) =>
        MemoryMarshal.TryGetArray(m.Data, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : m.Data.ToArray();

    private static byte[] ChangeReplicasToBinary(ChangeReplicaSet m)
    {
        var buffer = new byte[IdSize * (1 + m.Replicas.Length)];
        m.VolumeId.WriteTo(buffer);
        for (var i = 0; i < m.Replicas.Length; i++) m.Replicas[i].WriteTo(buffer.AsSpan(IdSize * (1 + i)));
        return buffer;
    }

    private static ChangeLifecycle ChangeLifecycleFromBinary(byte[] bytes)
    {
        Exact(bytes, IdSize + 10);
        var change = (LifecycleChange)bytes[IdSize];
        if (!Enum.IsDefined(change)) throw new SerializationException($"unknown lifecycle change {bytes[IdSize]}");
        return new ChangeLifecycle(new Id160(bytes), change, I64(bytes, IdSize + 1), Bool(bytes, IdSize + 9));
    }

    private static ChangeReplicaSet ChangeReplicasFromBinary(byte[] bytes)
    {
        if (bytes.Length < 2 * IdSize || bytes.Length % IdSize != 0)
            throw new SerializationException($"a replica-set change of {bytes.Length} bytes is malformed");
        var replicas = new Id160[bytes.Length / IdSize - 1];
        for (var i = 0; i < replicas.Length; i++) replicas[i] = new Id160(bytes.AsSpan(IdSize * (1 + i)));
        return new ChangeReplicaSet(new Id160(bytes), replicas);
    }

    private const int ResyncPieceHeader = IdSize + 17;

    // Like an entry chunk: the entries copied once, after the transfer id, lsn, next block and the last-piece flag.
    private static byte[] ResyncPieceToBinary(ResyncPiece m)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(ResyncPieceHeader + m.Data.Length);
        m.Transfer.WriteTo(buffer);
        BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(IdSize), m.Lsn);
        BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(IdSize + 8), m.NextBlock);
        buffer[IdSize + 16] = m.Complete ? (byte)1 : (byte)0;
        m.Data.Span.CopyTo(buffer.AsSpan(ResyncPieceHeader));
        return buffer;
    }

    // Head lsn, head version, holds-the-asker's-head flag, newest source lsn; then the blocks, copied once.
    private const int ReplicaCopyHeader = 8 + IdSize + 1 + 8;

    private static byte[] ReplicaCopyToBinary(ReplicaCopy m)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(ReplicaCopyHeader + m.Data.Length);
        BinaryPrimitives.WriteInt64LittleEndian(buffer, m.HeadLsn);
        m.HeadVersion.WriteTo(buffer.AsSpan(8));
        buffer[8 + IdSize] = m.HoldsAskerHead ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(9 + IdSize), m.NewestSourceLsn);
        m.Data.Span.CopyTo(buffer.AsSpan(ReplicaCopyHeader));
        return buffer;
    }

    private static byte[] MapResultToBinary(MapResult m)
    {
        var buffer = new byte[4 + m.Ranges.Count * MappedRangeSize];
        BinaryPrimitives.WriteInt32LittleEndian(buffer, m.Ranges.Count);
        var s = buffer.AsSpan(4);
        foreach (var r in m.Ranges)
        {
            BinaryPrimitives.WriteInt64LittleEndian(s, r.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(s[8..], r.Length);
            s[16] = r.Allocated ? (byte)1 : (byte)0;
            s = s[MappedRangeSize..];
        }
        return buffer;
    }

    private static MapResult MapResultFromBinary(byte[] bytes)
    {
        var count = I32(bytes, 0);
        if (count < 0 || bytes.Length != 4 + (long)count * MappedRangeSize)
            throw new SerializationException($"a map result claims {count} ranges in {bytes.Length} bytes");
        var ranges = new MappedRange[count];
        var s = bytes.AsSpan(4);
        for (var i = 0; i < count; i++, s = s[MappedRangeSize..])
            ranges[i] = new MappedRange(BinaryPrimitives.ReadInt64LittleEndian(s), BinaryPrimitives.ReadInt64LittleEndian(s[8..]), s[16] != 0);
        return new MapResult(ranges);
    }

    /// <summary>What a changed-since result carries after its ranges: the To version and its size.</summary>
    private const int ChangedSinceTail = IdSize + 8;

    private static byte[] ChangedSinceResultToBinary(ChangedSinceResult m)
    {
        // The ranges, then the version they go up to and its size.
        var buffer = new byte[4 + m.Ranges.Count * 16 + ChangedSinceTail];
        BinaryPrimitives.WriteInt32LittleEndian(buffer, m.Ranges.Count);
        var s = buffer.AsSpan(4);
        foreach (var r in m.Ranges)
        {
            BinaryPrimitives.WriteInt64LittleEndian(s, r.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(s[8..], r.Length);
            s = s[16..];
        }
        m.To.WriteTo(s);
        BinaryPrimitives.WriteInt64LittleEndian(s[IdSize..], m.ToSizeBytes);
        return buffer;
    }

    private static ChangedSinceResult ChangedSinceResultFromBinary(byte[] bytes)
    {
        var count = I32(bytes, 0);
        // Without the tail: from a node that predates it (no version, no size).
        var end = 4 + (long)count * 16;
        if (count < 0 || (bytes.Length != end && bytes.Length != end + ChangedSinceTail))
            throw new SerializationException($"a changed-since result claims {count} ranges in {bytes.Length} bytes");
        var ranges = new ChangedRange[count];
        for (var i = 0; i < count; i++) ranges[i] = new ChangedRange(I64(bytes, 4 + 16 * i), I64(bytes, 12 + 16 * i));
        var result = new ChangedSinceResult(ranges);
        return bytes.Length == end ? result : result with { To = new Id160(bytes.AsSpan((int)end)), ToSizeBytes = I64(bytes, (int)end + IdSize) };
    }

    private static byte[] FailureToBinary(VolumeFailure m)
    {
        var text = Encoding.UTF8.GetBytes(m.Message);
        var buffer = new byte[1 + IdSize + 16 + text.Length];
        buffer[0] = (byte)m.Kind;
        m.VolumeId.WriteTo(buffer.AsSpan(1));
        BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(1 + IdSize), m.Offset);
        BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(1 + IdSize + 8), m.Length);
        text.CopyTo(buffer.AsSpan(1 + IdSize + 16));
        return buffer;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private static VolumeFailure FailureFromBinary(byte[] bytes)
    {
        if (bytes.Length < 1 + IdSize + 16) throw new SerializationException($"a volume failure of {bytes.Length} bytes is too short");
        var kind = (VolumeErrorKind)bytes[0];
        if (!Enum.IsDefined(kind)) throw new SerializationException($"unknown volume error kind {bytes[0]}");
        return new VolumeFailure(kind, new Id160(bytes.AsSpan(1)), I64(bytes, 1 + IdSize), I64(bytes, 1 + IdSize + 8),
            StrictUtf8.GetString(bytes, 1 + IdSize + 16, bytes.Length - (1 + IdSize + 16)));
    }

    private static byte[] Fixed<T>(int size, T message, SpanAction<T> write)
    {
        var buffer = new byte[size];
        write(buffer, message);
        return buffer;
    }

    private delegate void SpanAction<in T>(Span<byte> span, T message);

    private static byte[] Exact(byte[] bytes, int size) =>
        bytes.Length == size ? bytes : throw new SerializationException($"expected {size} bytes, got {bytes.Length}");

    private static long I64(byte[] b, int at) => BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(at));
    private static int I32(byte[] b, int at) => BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(at));
    private static bool Bool(byte[] b, int at) => b[at] switch
    {
        0 => false,
        1 => true,
        var x => throw new SerializationException($"a flag byte must be 0 or 1, got {x}"),
    };

    private static SerializationException Unknown(string? what) =>
        new($"the CloudFS volume serializer does not know {what}");
}
