// The wire format of a feed: one TCP connection per replica and volume, opened by the replica's follower to the
// primary's feed port (cloudfs.replication.feed-port), so entries reach a replica in one socket write and one read
// instead of an Akka message each way per chunk (Akka.Remote's envelope, copies and extra thread hops were half of a
// replica's CPU). Little-endian throughout.
//
//   follower → primary, once:  hello  = "CFSFEED1" volume(20) follower-host(20) after-lsn(i64) max-chunk-bytes(i32)
//   primary → follower, frames: kind(u8) length(u32) body
//       1 chunk  body = last-lsn(i64) head-lsn(i64) entries (whole, in the stream format; none: a keepalive)
//       2 flush  body = lsn(i64)          a FUA write or FLUSH waits for this lsn to be durable on a majority
//       3 end    body = compacted(u8) reason(utf-8)   the feed cannot go on; the connection closes after it
//   follower → primary, frames of 17 bytes: 4 ack  written-lsn(i64) durable-lsn(i64)
//
// The entries are verified by the replica's apply (hash chain, checksums) like any stream; a malformed hello or frame
// ends the connection and nothing else.
using System.Buffers.Binary;
using System.Net.Sockets;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

internal static class FeedWire
{
    public static ReadOnlySpan<byte> Magic => "CFSFEED1"u8;
    public const int HelloSize = 8 + Id160.Size + Id160.Size + 8 + 4;
    public const int FrameHeaderSize = 5;
    public const int ChunkPrefixSize = 16;
    public const int AckSize = 17;

    public const byte Chunk = 1, Flush = 2, End = 3, Ack = 4;

    /// <summary>Largest frame body accepted: a chunk holds at least one entry however big (at most 2,048 blocks).</summary>
    public const int MaxBody = (16 << 20) + ChunkPrefixSize;

    public sealed record Hello(Id160 Volume, Id160 Follower, long AfterLsn, int MaxBytes);

    public static byte[] EncodeHello(Hello h)
    {
        var b = new byte[HelloSize];
        Magic.CopyTo(b);
        h.Volume.WriteTo(b.AsSpan(8));
        h.Follower.WriteTo(b.AsSpan(8 + Id160.Size));
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(8 + 2 * Id160.Size), h.AfterLsn);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16 + 2 * Id160.Size), h.MaxBytes);
        return b;
    }

    public static Hello DecodeHello(ReadOnlySpan<byte> b)
    {
        if (b.Length != HelloSize || !b[..8].SequenceEqual(Magic)) throw new FeedProtocolException("not a CloudFS feed request");
        var after = BinaryPrimitives.ReadInt64LittleEndian(b[(8 + 2 * Id160.Size)..]);
        if (after < 0) throw new FeedProtocolException($"a feed cannot start after lsn {after}");
        return new Hello(new Id160(b.Slice(8, Id160.Size)), new Id160(b.Slice(8 + Id160.Size, Id160.Size)), after,
            BinaryPrimitives.ReadInt32LittleEndian(b[(16 + 2 * Id160.Size)..]));
    }

    public static void WriteFrameHeader(Span<byte> b, byte kind, int bodyLength)
    {
        b[0] = kind;
        BinaryPrimitives.WriteUInt32LittleEndian(b[1..], (uint)bodyLength);
    }

    /// <summary>Reads a frame header: its kind and body length (checked against <see cref="MaxBody"/>).</summary>
    public static async ValueTask<(byte Kind, int Length)> ReadFrameHeaderAsync(Stream s, Memory<byte> scratch, CancellationToken ct)
    {
        await s.ReadExactlyAsync(scratch[..FrameHeaderSize], ct).ConfigureAwait(false);
        var kind = scratch.Span[0];
        var length = BinaryPrimitives.ReadUInt32LittleEndian(scratch.Span[1..]);
        if (kind is not (Chunk or Flush or End) || length > MaxBody) throw new FeedProtocolException($"malformed feed frame (kind {kind}, {length} bytes)");
        return (kind, (int)length);
    }

    public static byte[] EncodeEnd(bool compacted, string reason)
    {
        var text = System.Text.Encoding.UTF8.GetBytes(reason.Length > 1000 ? reason[..1000] : reason);
        var b = new byte[FrameHeaderSize + 1 + text.Length];
        WriteFrameHeader(b, End, 1 + text.Length);
        b[FrameHeaderSize] = compacted ? (byte)1 : (byte)0;
        text.CopyTo(b, FrameHeaderSize + 1);
        return b;
    }

    public static void EncodeLsnPair(Span<byte> b, byte kind, long first, long second)
    {
        b[0] = kind;
        BinaryPrimitives.WriteInt64LittleEndian(b[1..], first);
        BinaryPrimitives.WriteInt64LittleEndian(b[9..], second);
    }

    public static void Tune(Socket socket)
    {
        // Chunks and acknowledgements are latency-bound: a sync write waits for both.
        socket.NoDelay = true;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
    }
}

/// <summary>A peer broke the feed protocol (a malformed hello or frame): its connection ends, nothing else.</summary>
public sealed class FeedProtocolException(string message) : CloudFsException(message);
