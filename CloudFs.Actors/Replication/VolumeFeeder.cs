// The primary's side of one follower's feed, over the connection the follower opened to this host's feed port
// (FeedWire): pushes the volume's new entries as soon as they are placed in this host's log, in parallel with its own
// write of them (so a sync write waits for one trip, not for the primary's write before the replica's), one socket
// write per chunk, and an empty chunk when nothing was appended for a while so the follower knows it is alive. TCP's
// own flow control bounds what is in flight. The follower's acknowledgements come back on the same connection and go
// to the volume's actor, numbered with this feed; an acknowledgement beyond what this connection carried ends the feed
// (a protocol violation), and when the feed ends the actor is told, so the host's acknowledgements stop counting. A
// follower silent for the idle limit (it acknowledges every keepalive) ends the feed. Over TLS (FeedConnection) the
// follower is the host its certificate names, and a chunk is still one socket write.
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Akka.Actor;
using Akka.Event;
using CloudFs.Actors.Volumes;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

internal sealed class VolumeFeeder : ReceiveActor
{
    private sealed record LoopEnded(string Reason);

    // Feeds are numbered in the order they start, process-wide: a volume's actor tells a host's newer feed from an older one.
    private static long s_feeds;

    private readonly LogStore _store;
    private readonly FeedWire.Hello _hello;
    private readonly FeedConnection _connection;
    private readonly Stream _stream;
    private readonly IActorRef _volumes;
    private readonly TimeSpan _keepAlive;
    private readonly TimeSpan _idleLimit;
    private readonly ReplicationCounters _counters;
    private readonly CancellationTokenSource _cts = new();
    // Chunks (the loop) and flush requests (the actor) share the connection: one frame at a time.
    private readonly SemaphoreSlim _sending = new(1, 1);
    // One per feed, armed for the idle limit around each send (under _sending): no token source per frame.
    private readonly CancellationTokenSource _stuck;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly long _feed = Interlocked.Increment(ref s_feeds);
    // The last lsn this connection carried (or the one its hello started after, which the host agent checked this host
    // holds): the most a replica can acknowledge on it.
    private long _sent;

    public static Props Props(LogStore store, ServeFeed feed, IActorRef volumes, TimeSpan keepAlive, TimeSpan idleLimit, ReplicationCounters counters) =>
        Akka.Actor.Props.Create(() => new VolumeFeeder(store, feed, volumes, keepAlive, idleLimit, counters));

    public VolumeFeeder(LogStore store, ServeFeed feed, IActorRef volumes, TimeSpan keepAlive, TimeSpan idleLimit, ReplicationCounters counters)
    {
        _store = store;
        _hello = feed.Hello;
        _connection = feed.Connection;
        _stream = feed.Connection.Stream;
        _volumes = volumes;
        _keepAlive = keepAlive;
        _idleLimit = idleLimit;
        _counters = counters;
        _sent = feed.Hello.AfterLsn;
        _stuck = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
        Receive<WantDurable>(w => _ = SendFlushAsync(w.Lsn));
        Receive<LoopEnded>(e =>
        {
            _log.Info("feed of volume {0} to host {1} ended: {2}", _hello.Volume, _hello.Follower, e.Reason);
            Context.Stop(Self);
        });
    }

    protected override void PreStart()
    {
        var self = Self;
        var ct = _cts.Token;
        var feed = Task.Run(() => FeedAsync(ct));
        var acks = Task.Run(() => ReadAcksAsync(ct));
        // Whichever ends first ends the feed (the actor's stop cancels the other). A loop that ended because the actor
        // was stopped (its agent replaced the feed, or ended every feed as the node stops) has nobody left to tell.
        Task.WhenAny(feed, acks).Unwrap().ContinueWith(t =>
        {
            if (ct.IsCancellationRequested) return;
            self.Tell(new LoopEnded(t.Exception?.GetBaseException() switch
            {
                null => t.IsCanceled ? "cancelled" : t.Result,
                OperationCanceledException => "cancelled",
                var e => e.Message,
            }));
        }, TaskContinuationOptions.ExecuteSynchronously);
    }

    protected override void PostStop()
    {
        // Not disposed: the loops may still be between two awaits on its token.
        // What the replica acknowledged on this connection stops counting (its next connection counts afresh); told
        // before the connection closes, so nothing that follows its close is counted with it.
        _volumes.Tell(new VolumeEnvelope(_store.HostId, new ReplicaFeedEnded(_hello.Volume, _hello.Follower, _feed)));
        _cts.Cancel();
        _connection.Dispose();
    }

    private async Task<string> FeedAsync(CancellationToken ct)
    {
        var volume = _hello.Volume;
        var after = _hello.AfterLsn;
        var max = Math.Clamp(_hello.MaxBytes, 64 << 10, 2 << 20);
        const int prefix = FeedWire.FrameHeaderSize + FeedWire.ChunkPrefixSize;
        // One buffer for every chunk: the frame header, then the entries appended behind it.
        var frame = new ArrayBufferWriter<byte>(prefix + max);
        try
        {
            while (true)
            {
                var newer = await _store.Streams.WaitForEntryAsync(volume, after, _keepAlive, ct).ConfigureAwait(false);
                // A host that lost the volume to a view change appends nothing more: its followers must find the new primary.
                if (!newer && !_store.IsWritable(volume)) throw new CloudFsException($"this host is no longer the primary of volume {volume}");
                frame.ResetWrittenCount();
                frame.Advance(prefix);
                // Entries are fed as soon as they are placed in this host's log, in parallel with its own write.
                var (last, head) = newer ? _store.Streams.ReadEntries(volume, after, max, unwritten: true, frame) : (after, after);
                var bytes = frame.WrittenCount - prefix;
                var header = MemoryMarshal.AsMemory(frame.WrittenMemory).Span;
                FeedWire.WriteFrameHeader(header, FeedWire.Chunk, FeedWire.ChunkPrefixSize + bytes);
                BinaryPrimitives.WriteInt64LittleEndian(header[FeedWire.FrameHeaderSize..], last);
                BinaryPrimitives.WriteInt64LittleEndian(header[(FeedWire.FrameHeaderSize + 8)..], head);
                // Before the write: the replica may acknowledge the chunk before the write call returns here.
                if (last > after) Volatile.Write(ref _sent, last);
                await SendAsync(frame.WrittenMemory, ct).ConfigureAwait(false);
                if (last > after)
                {
                    _counters.Fed(last - after, bytes);
                    after = last;
                }
            }
        }
        catch (Exception e) when (e is CloudFsException && !ct.IsCancellationRequested)
        {
            // Tell the follower why (best effort: it may be the connection that failed).
            try { await SendAsync(FeedWire.EncodeEnd(e is VersionCompactedException, e.Message), ct).ConfigureAwait(false); }
            catch (Exception) { }
            return e.Message;
        }
    }

    private async Task<string> ReadAcksAsync(CancellationToken ct)
    {
        var ack = new byte[FeedWire.AckSize];
        using var quiet = CancellationTokenSource.CreateLinkedTokenSource(ct);
        while (true)
        {
            quiet.CancelAfter(_idleLimit);
            try
            {
                await _stream.ReadExactlyAsync(ack, quiet.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return $"no word from the replica for {_idleLimit.TotalSeconds:0} s";
            }
            catch (EndOfStreamException)
            {
                return "the replica closed the connection";
            }
            var written = BinaryPrimitives.ReadInt64LittleEndian(ack.AsSpan(1));
            var durable = BinaryPrimitives.ReadInt64LittleEndian(ack.AsSpan(9));
            if (ack[0] != FeedWire.Ack || written < 0 || durable < 0)
                throw new FeedProtocolException($"malformed acknowledgement from host {_hello.Follower} (kind {ack[0]}, lsns {written}, {durable})");
            // A replica holds at most what it was sent: an acknowledgement beyond that is a lie, and ends the feed.
            var sent = Volatile.Read(ref _sent);
            if (written > sent || durable > sent)
                throw new FeedProtocolException($"host {_hello.Follower} acknowledged lsns {written}, {durable} of volume {_hello.Volume}, beyond lsn {sent}, the last this connection carried");
            // The volume's actor counts only hosts of its replica set.
            _volumes.Tell(new VolumeEnvelope(_store.HostId, new ReplicaAck(_hello.Volume, _hello.Follower, _feed, written, durable)));
        }
    }

    private async Task SendFlushAsync(long lsn)
    {
        var frame = new byte[FeedWire.FrameHeaderSize + 8];
        FeedWire.WriteFrameHeader(frame, FeedWire.Flush, 8);
        BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(FeedWire.FrameHeaderSize), lsn);
        try { await SendAsync(frame, _cts.Token).ConfigureAwait(false); }
        catch (Exception) { }   // the feed is ending; the follower flushes within its flush delay anyway
    }

    /// <summary>One frame, whole; a follower that takes nothing in for the idle limit (TCP's window stays shut) ends the feed.</summary>
    private async Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
    {
        await _sending.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // ct is the feed's own token (_cts), which _stuck is linked to.
            _stuck.CancelAfter(_idleLimit);
            try
            {
                await _connection.SendAsync(frame, _stuck.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new CloudFsException($"the replica took nothing in for {_idleLimit.TotalSeconds:0} s");
            }
            _stuck.CancelAfter(Timeout.InfiniteTimeSpan);
        }
        finally
        {
            _sending.Release();
        }
    }
}
