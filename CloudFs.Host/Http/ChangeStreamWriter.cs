// The changes stream's encoder (docs/BACKUP.md, "The changes stream"): a header (magic, format version, the volume's
// size at TO, the FROM and TO version ids), one record per changed range (offset, length, TO's bytes there) in offset
// order, and an end record with the totals, so a reader detects a stream cut short. All integers big-endian.
// Everything goes through one buffer of a fixed size: the records' bytes are read straight into it and it is written
// out whenever it fills, so memory stays bounded however large the diff is, and each write is one large chunk.
using System.Buffers;
using System.Buffers.Binary;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Http;

internal sealed class ChangeStreamWriter : IDisposable
{
    /// <summary>The first bytes of every changes stream.</summary>
    public static ReadOnlySpan<byte> Magic => "CFSDIFF\n"u8;
    public const uint FormatVersion = 1;
    /// <summary>Magic, u32 format version, u64 size at TO, FROM id, TO id.</summary>
    public const int HeaderSize = 8 + 4 + 8 + Id160.Size + Id160.Size;
    /// <summary>u64 offset, u32 length.</summary>
    public const int RecordHeaderSize = 8 + 4;
    /// <summary>The end record: offset <see cref="EndOffset"/>, length 0, u64 records, u64 bytes.</summary>
    public const int EndSize = RecordHeaderSize + 8 + 8;
    public const ulong EndOffset = ulong.MaxValue;
    /// <summary>The longest record: a longer changed range comes as consecutive records.</summary>
    public const int MaxRecordLength = 1 << 30;

    private readonly Stream _output;
    private readonly byte[] _buffer;
    private readonly int _size;
    private int _used;

    /// <param name="bufferSize">Bytes held before they are written out (at least a block and the end record).</param>
    public ChangeStreamWriter(Stream output, int bufferSize)
    {
        if (bufferSize < HeaderSize + EndSize + LogStore.BlockSize)
            throw new ArgumentOutOfRangeException(nameof(bufferSize), "the buffer must hold at least the header, the end record and a block");
        _output = output;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        _size = bufferSize;
    }

    /// <summary>Records written so far.</summary>
    public long Records { get; private set; }
    /// <summary>Data bytes written so far (what the records carry, without their headers).</summary>
    public long Bytes { get; private set; }

    /// <summary>The header; first, once. Nothing reaches the output until the buffer fills or the stream ends.</summary>
    public void WriteHeader(long sizeAtTo, Id160 from, Id160 to)
    {
        if (_used != 0) throw new InvalidOperationException("the header comes first");
        var s = _buffer.AsSpan(0, HeaderSize);
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt32BigEndian(s[8..], FormatVersion);
        BinaryPrimitives.WriteInt64BigEndian(s[12..], sizeAtTo);
        from.WriteTo(s[20..]);
        to.WriteTo(s[(20 + Id160.Size)..]);
        _used = HeaderSize;
    }

    /// <summary>
    /// One record of <paramref name="length"/> bytes at <paramref name="offset"/> (both multiples of 512, length at most
    /// <see cref="MaxRecordLength"/>): its header, then its bytes, which <paramref name="read"/> puts into the buffer
    /// (given the offset of each piece and where it goes; pieces are whole blocks).
    /// </summary>
    public async ValueTask WriteRecordAsync(long offset, int length, Func<long, Memory<byte>, ValueTask> read, CancellationToken ct)
    {
        if (offset < 0 || length <= 0 || length > MaxRecordLength || offset % LogStore.BlockSize != 0 || length % LogStore.BlockSize != 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"a record of {length} bytes at {offset} is not whole blocks");
        if (_size - _used < RecordHeaderSize) await FlushAsync(ct);
        BinaryPrimitives.WriteInt64BigEndian(_buffer.AsSpan(_used), offset);
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_used + 8), length);
        _used += RecordHeaderSize;
        for (long done = 0; done < length;)
        {
            var room = (_size - _used) & ~(LogStore.BlockSize - 1);
            if (room == 0) { await FlushAsync(ct); continue; }
            var n = (int)Math.Min(room, length - done);
            await read(offset + done, _buffer.AsMemory(_used, n));
            _used += n;
            done += n;
        }
        Records++;
        Bytes += length;
    }

    /// <summary>The end record with the totals, and everything still held written out.</summary>
    public async ValueTask EndAsync(CancellationToken ct)
    {
        if (_size - _used < EndSize) await FlushAsync(ct);
        var s = _buffer.AsSpan(_used, EndSize);
        BinaryPrimitives.WriteUInt64BigEndian(s, EndOffset);
        BinaryPrimitives.WriteInt32BigEndian(s[8..], 0);
        BinaryPrimitives.WriteInt64BigEndian(s[12..], Records);
        BinaryPrimitives.WriteInt64BigEndian(s[20..], Bytes);
        _used += EndSize;
        await FlushAsync(ct);
    }

    private async ValueTask FlushAsync(CancellationToken ct)
    {
        await _output.WriteAsync(_buffer.AsMemory(0, _used), ct);
        _used = 0;
    }

    /// <summary>Returns the buffer. A stream that did not end is not completed: what it held is dropped, and the reader
    /// sees no end record.</summary>
    public void Dispose() => ArrayPool<byte>.Shared.Return(_buffer);
}
