// One client connection: handshake, then the transmission loop that reads requests in order, dispatches each to
// the gateway without waiting for the previous one, and leaves the replies to the NbdReplyWriter.
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using CloudFs.Actors.Gateway;

namespace CloudFs.Host.Nbd;

internal sealed class NbdConnection
{
    /// <summary>Requests in flight per connection; the reader stops reading (TCP backpressure) beyond this.</summary>
    public const int MaxInFlight = 64;

    private readonly Socket _socket;
    private readonly NbdConnectionLimits _limits;
    private readonly IVolumeGateway _gateway;
    private readonly string _peer;
    private readonly SemaphoreSlim _slotsAvailable = new(MaxInFlight, MaxInFlight);
    private readonly NbdRequestSlot[] _free = new NbdRequestSlot[MaxInFlight];
    private int _freeCount;
    private long _inFlightBytes;
    private int _repliesPending;
    // TLS: replies completed together are gathered (NbdReplyWriter), which needs _repliesPending; plain counts nothing.
    private bool _gatherReplies;
    private TaskCompletionSource? _bytesReleased;
    private NbdReplyWriter? _replies;
    private NbdSession? _session;
    private CancellationTokenSource? _cts;
    private int _fenced;

    public NbdConnection(Socket socket, IVolumeGateway gateway, Action<string>? log, NbdConnectionLimits limits)
    {
        _limits = limits;
        _socket = socket;
        _gateway = gateway;
        Log = log;
        _peer = socket.RemoteEndPoint?.ToString() ?? "?";
        for (int i = 0; i < MaxInFlight; i++) _free[_freeCount++] = new NbdRequestSlot(this);
    }

    public Action<string>? Log { get; }

    public async Task RunAsync(CancellationToken serverToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(serverToken);
        _cts = cts;
        var ct = cts.Token;
        var transport = new NbdTransport(_socket);
        bool drain = false;
        try
        {
            var client = (_socket.RemoteEndPoint as System.Net.IPEndPoint)?.Address.ToString() ?? _peer;
            var handshake = new NbdHandshake(transport, _gateway, Log, _peer, _limits.Tls, _limits.Leases, client,
                holder: $"NBD client {client} through node {_socket.LocalEndPoint}",
                attachmentLost: reason =>
                {
                    // Another holder has the volume now: this session must not write beside it.
                    Log?.Invoke($"nbd {_peer}: closing: {reason}");
                    try { cts.Cancel(); } catch (ObjectDisposedException) { }
                });
            using (var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                // A client that connects and never picks an export would otherwise hold its socket forever.
                handshakeTimeout.CancelAfter(_limits.HandshakeTimeout);
                try { _session = await handshake.RunAsync(handshakeTimeout.Token); }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    Log?.Invoke($"nbd {_peer}: no export chosen within {_limits.HandshakeTimeout.TotalSeconds:0.#} s; closing");
                    if (handshake.Attachment is { } unused) await unused.DisposeAsync();
                    return;
                }
            }
            drain = handshake.DrainBeforeClose;
            // The read-write lease lives as long as the session; released when the connection ends, however it ends.
            await using var lease = handshake.Attachment;
            if (_session is not null)
            {
                using var attached = _session.ReadOnly ? null : _limits.Attachments?.AttachReadWrite(_session.Volume);
                await TransmitAsync(_session, transport.Reader, transport.Writer, transport.IsTls, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            Log?.Invoke($"nbd {_peer}: connection lost: {e.Message}");
        }
        catch (Exception e)
        {
            Log?.Invoke($"nbd {_peer}: closing after unexpected {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            if (drain) await HalfCloseAndDrainAsync(transport);
            // Every reply worth sending was flushed by the handshake or the reply writer.
            await transport.DisposeAsync();
        }
    }

    /// <summary>
    /// The volume's writer refused a write of this session because its read-write lease was superseded (another holder
    /// has the volume, or an operator detached it): said once per connection. Every such request fails with EPERM and
    /// the reason; the connection closes at the lease's next renewal, which the writer refuses too.
    /// </summary>
    internal void AttachmentFenced(string reason)
    {
        if (Interlocked.Exchange(ref _fenced, 1) == 0) Log?.Invoke($"nbd {_peer}: writes refused: {reason}");
    }

    private async Task TransmitAsync(NbdSession session, PipeReader reader, PipeWriter writer, bool tls, CancellationToken ct)
    {
        // Under TLS a flush is a record the node encrypts and the client decrypts: replies completed together are
        // gathered into one (NbdReplyWriter). In plain a flush is one send, cheaper than the pool step that gathers.
        _gatherReplies = tls;
        _replies = new NbdReplyWriter(writer, session.StructuredReplies, this, MaxInFlight, _limits.PayloadTimeout, gatherReplies: tls);
        var writerTask = _replies.RunAsync(ct);
        // One per connection, armed only while a WRITE payload is awaited (no timer per request).
        using var stalled = CancellationTokenSource.CreateLinkedTokenSource(ct);
        NbdRequestSlot? taken = null; // a slot taken but not yet handed to the gateway or the writer
        try
        {
            bool deferring = false;
            while (true)
            {
                // Replies wait while requests are already buffered, and go out together once the reader runs dry.
                var pendingRead = reader.ReadAtLeastAsync(NbdProtocol.RequestHeaderSize, ct);
                if (!pendingRead.IsCompleted)
                {
                    _replies.Kick();
                    deferring = false;
                }
                var result = await pendingRead;
                if (!deferring)
                {
                    _replies.Defer();
                    deferring = true;
                }
                var buffer = result.Buffer;
                if (buffer.Length < NbdProtocol.RequestHeaderSize)
                {
                    if (buffer.Length > 0) Log?.Invoke($"nbd {_peer}: stream ended inside a request header; closing");
                    reader.AdvanceTo(buffer.End);
                    return;
                }
                var request = NbdRequest.Parse(buffer);
                reader.AdvanceTo(buffer.GetPosition(NbdProtocol.RequestHeaderSize));
                if (request.Magic != NbdProtocol.RequestMagic)
                {
                    // Nothing after a bad magic can be framed: end this connection (only this one).
                    Log?.Invoke($"nbd {_peer}: bad request magic 0x{request.Magic:x8}; closing");
                    return;
                }
                if (request.Type == NbdProtocol.CmdDisc) return;

                var pendingSlot = _slotsAvailable.WaitAsync(ct);
                if (!pendingSlot.IsCompleted)
                {
                    _replies.Kick(); // the slots come back only through the writer
                    deferring = false;
                }
                await pendingSlot;
                var slot = taken = TakeSlot();
                if (_gatherReplies) Interlocked.Increment(ref _repliesPending);
                slot.Begin(request);
                uint error = request.Validate(session, out var reason);

                if (request.Type == NbdProtocol.CmdWrite)
                {
                    if (error != 0)
                    {
                        // The payload still follows on the wire: consume it so the next header is framed right.
                        _replies.Kick();
                        deferring = false;
                        if (!await SkipAsync(reader, request.Length, ct)) return;
                        taken = null;
                        slot.Fail(error, reason);
                        continue;
                    }
                    if (!TryReserve(slot, request.Length))
                    {
                        _replies.Kick();
                        deferring = false;
                        await ReserveAsync(slot, request.Length, ct);
                    }
                    var payload = slot.RentPayload((int)request.Length);
                    // Inline rather than a helper: this loop's awaits reuse the connection's one state machine.
                    int copied = CopyBuffered(reader, payload.Span);
                    if (copied < payload.Length)
                    {
                        // The rest must arrive within payload-timeout: a client that stops mid-payload must not hold
                        // the buffer (up to 32 MiB) and its budget forever. Idle connections between requests may wait.
                        stalled.CancelAfter(_limits.PayloadTimeout);
                        try
                        {
                            while (copied < payload.Length)
                            {
                                var pendingPayload = reader.ReadAsync(stalled.Token);
                                if (!pendingPayload.IsCompleted)
                                {
                                    _replies.Kick();
                                    deferring = false;
                                }
                                var more = await pendingPayload;
                                int take = CopyFrom(reader, more, payload.Span[copied..]);
                                copied += take;
                                if (take == 0 && more.IsCompleted)
                                {
                                    Log?.Invoke($"nbd {_peer}: stream ended inside a WRITE payload; closing");
                                    return;
                                }
                            }
                        }
                        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                        {
                            _limits.PayloadTimedOut?.Invoke();
                            Log?.Invoke($"nbd {_peer}: a WRITE payload of {request.Length} bytes did not arrive within {_limits.PayloadTimeout.TotalSeconds:0.#} s ({copied} came); closing");
                            return;
                        }
                        stalled.CancelAfter(Timeout.InfiniteTimeSpan);
                    }
                }
                else if (error == 0 && request.Type == NbdProtocol.CmdRead)
                {
                    if (!TryReserve(slot, request.Length))
                    {
                        _replies.Kick();
                        deferring = false;
                        await ReserveAsync(slot, request.Length, ct);
                    }
                    slot.RentPayload((int)request.Length);
                }

                taken = null;
                if (error != 0) slot.Fail(error, reason);
                else Dispatch(slot, session, ct);
            }
        }
        finally
        {
            if (taken is not null)
            {
                // A payload cut off: no reply will come, and its memory goes back.
                if (_gatherReplies) Interlocked.Decrement(ref _repliesPending);
                Release(taken, keep: false);
            }
            _replies.Kick();
            // Every request read so far gets its reply before the connection closes.
            for (int i = 0; i < MaxInFlight; i++) await _slotsAvailable.WaitAsync(CancellationToken.None);
            _replies.Stop();
            await writerTask;
        }
    }

    /// <summary>Starts the gateway call for a validated request; called in arrival order, never awaited here.</summary>
    private void Dispatch(NbdRequestSlot slot, NbdSession session, CancellationToken ct)
    {
        var request = slot.Request;
        long offset = (long)request.Offset;
        try
        {
            switch (request.Type)
            {
                case NbdProtocol.CmdRead:
                    slot.Await(session.Version is { } version
                        ? _gateway.ReadVersionAsync(session.Volume, version, offset, slot.Payload, ct)
                        : _gateway.ReadAsync(session.Volume, offset, slot.Payload, ct));
                    break;
                case NbdProtocol.CmdWrite:
                    slot.Await(_gateway.WriteAsync(session.Volume, offset, slot.Payload, request.Fua, session.Attachment, ct));
                    break;
                case NbdProtocol.CmdFlush:
                    slot.Await(_gateway.FlushAsync(session.Volume, session.Attachment, ct));
                    break;
                case NbdProtocol.CmdTrim:
                case NbdProtocol.CmdWriteZeroes:
                    // NO_HOLE only says the client wants allocation kept; the range must read as zeros either way.
                    slot.Await(_gateway.WriteZeroesAsync(session.Volume, offset, request.Length, request.Fua, session.Attachment, ct));
                    break;
                case NbdProtocol.CmdBlockStatus:
                    slot.AwaitStatus(session, _gateway, ct);
                    break;
                default:
                    slot.Fail(NbdErrors.EINVAL);
                    break;
            }
        }
        catch (Exception e)
        {
            slot.Fail(e); // the gateway threw before returning its task
        }
    }

    /// <summary>The server's payload buffers, shared by its connections.</summary>
    internal PayloadBufferPool Buffers => _limits.Buffers;

    /// <summary>Called by a slot when its outcome is known (possibly on the reader's thread, possibly on a pool thread).</summary>
    internal void Completed(NbdRequestSlot slot)
    {
        if (_gatherReplies) Interlocked.Decrement(ref _repliesPending);
        _replies!.Enqueue(slot);
    }

    /// <summary>Requests taken in whose outcome is not known yet: replies the writer can expect soon (counted only on a
    /// connection that gathers its replies).</summary>
    internal int RepliesPending => Volatile.Read(ref _repliesPending);

    /// <summary>Called by the reply writer once the slot's reply is in the pipe.</summary>
    internal void Release(NbdRequestSlot slot, bool keep = true)
    {
        slot.ReturnBuffer(keep);
        if (slot.ReservedBytes != 0)
        {
            Interlocked.Add(ref _inFlightBytes, -slot.ReservedBytes);
            _limits.NodeBudget.Return(slot.ReservedBytes);
            slot.ReservedBytes = 0;
            Interlocked.Exchange(ref _bytesReleased, null)?.TrySetResult();
        }
        lock (_free) _free[_freeCount++] = slot;
        _slotsAvailable.Release();
    }

    internal void ReplyWriteFailed(Exception e)
    {
        if (e is not OperationCanceledException) Log?.Invoke($"nbd {_peer}: writing replies failed: {e.Message}");
        // The client cannot hear us any more: stop reading too, and cancel what is in flight.
        try { _cts?.Cancel(); } catch (ObjectDisposedException) { }
    }

    internal string Describe(NbdRequest request) =>
        $"nbd {_peer} volume {_session?.Volume} command {request.Type} at {request.Offset}+{request.Length}";

    private NbdRequestSlot TakeSlot()
    {
        lock (_free) return _free[--_freeCount];
    }

    /// <summary>Counts <paramref name="length"/> payload bytes against the connection's and the node's budgets if they fit now.</summary>
    private bool TryReserve(NbdRequestSlot slot, long length)
    {
        long inFlight = Volatile.Read(ref _inFlightBytes);
        if (inFlight != 0 && inFlight + length > _limits.ConnectionBudget) return false;
        if (!_limits.NodeBudget.TryTake(length)) return false;
        Interlocked.Add(ref _inFlightBytes, length);
        slot.ReservedBytes = length;
        return true;
    }

    /// <summary>Waits until <paramref name="length"/> more payload bytes fit the connection's budget, then the node's (the slow path).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReserveAsync(NbdRequestSlot slot, long length, CancellationToken ct)
    {
        while (true)
        {
            long inFlight = Volatile.Read(ref _inFlightBytes);
            if (inFlight == 0 || inFlight + length <= _limits.ConnectionBudget) break;
            var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _bytesReleased, released);
            if (Volatile.Read(ref _inFlightBytes) != inFlight) continue; // released meanwhile: look again
            await released.Task.WaitAsync(ct);
        }
        // Only the reader reserves, so the connection's share cannot shrink while the node's is awaited.
        if (!_limits.NodeBudget.TryTake(length)) await _limits.NodeBudget.TakeAsync(length, ct);
        Interlocked.Add(ref _inFlightBytes, length);
        slot.ReservedBytes = length;
    }

    /// <summary>Copies what the pipe already holds into <paramref name="destination"/> without waiting (the common case).</summary>
    private static int CopyBuffered(PipeReader reader, Span<byte> destination) =>
        reader.TryRead(out var result) ? CopyFrom(reader, result, destination) : 0;

    private static int CopyFrom(PipeReader reader, ReadResult result, Span<byte> destination)
    {
        var buffer = result.Buffer;
        int take = (int)Math.Min(buffer.Length, destination.Length);
        buffer.Slice(0, take).CopyTo(destination);
        reader.AdvanceTo(buffer.GetPosition(take));
        return take;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> SkipAsync(PipeReader reader, long length, CancellationToken ct)
    {
        while (length > 0)
        {
            var result = await reader.ReadAsync(ct);
            var buffer = result.Buffer;
            long take = Math.Min(buffer.Length, length);
            length -= take;
            reader.AdvanceTo(buffer.GetPosition(take));
            if (take == 0 && result.IsCompleted) return false;
        }
        return true;
    }

    /// <summary>
    /// After a final error reply, closing with unread input would reset the connection and could destroy the reply
    /// before the client reads it; so half-close, and read (and drop) what the client still sends, for a short while.
    /// </summary>
    private async Task HalfCloseAndDrainAsync(NbdTransport transport)
    {
        try
        {
            transport.ShutdownSend();
            var reader = transport.Reader;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            long dropped = 0;
            while (dropped < 16 * 1024 * 1024)
            {
                var result = await reader.ReadAsync(timeout.Token);
                dropped += result.Buffer.Length;
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (Exception) { /* best effort: the connection is closing anyway */ }
    }
}
