// The reusable state of one in-flight request: its header, its pooled payload buffer, and the outcome of the
// gateway call. A connection owns a fixed set of slots, so a request costs no allocation beyond pooled buffers.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

internal sealed class NbdRequestSlot
{
    private readonly NbdConnection _owner;
    private readonly Action _onCompleted;
    private ValueTaskAwaiter _awaiter;

    public NbdRequestSlot(NbdConnection owner)
    {
        _owner = owner;
        // Cached delegates: registering a continuation with them allocates nothing per request.
        _onCompleted = OnCompleted;
    }

    public NbdRequest Request { get; private set; }
    /// <summary>The rented payload: WRITE data, READ data, or BLOCK_STATUS descriptors (empty when none).</summary>
    public Memory<byte> Payload => _payload.Memory;
    private PayloadBuffer _payload;
    /// <summary>Bytes of <see cref="Payload"/> that make up the reply payload (READ: the request length).</summary>
    public int PayloadLength => _payload.Length;
    /// <summary>Bytes counted against the connection's in-flight budget; returned when the slot is released.</summary>
    public long ReservedBytes { get; set; }
    /// <summary>The NBD error of the reply (0: success).</summary>
    public uint Error { get; private set; }
    public string? ErrorMessage { get; private set; }

    public void Begin(in NbdRequest request)
    {
        Request = request;
        Error = 0;
        ErrorMessage = null;
        FirstChunkLength = 0;
    }

    public Memory<byte> RentPayload(int length)
    {
        _payload = _owner.Buffers.Rent(length);
        return _payload.Memory;
    }

    /// <summary>Returns the payload buffer once the reply has been copied out; <paramref name="keep"/> false when its
    /// connection was dropped (a large buffer then goes back to the operating system).</summary>
    public void ReturnBuffer(bool keep = true)
    {
        _owner.Buffers.Return(_payload, keep);
        _payload = default;
    }

    /// <summary>Completes the request with an error without calling the gateway.</summary>
    public void Fail(uint error, string? message = null)
    {
        Error = error;
        ErrorMessage = message;
        _owner.Completed(this);
    }

    public void Fail(Exception error)
    {
        if (error is AttachmentFencedException) _owner.AttachmentFenced(error.Message);
        Fail(NbdErrors.FromException(error, _owner.Log, _owner.Describe(Request)), error is CloudFsException ? error.Message : null);
    }

    /// <summary>Waits for a gateway call, then hands the slot to the reply writer.</summary>
    public void Await(ValueTask pending)
    {
        _awaiter = pending.GetAwaiter();
        if (_awaiter.IsCompleted) OnCompleted();
        else _awaiter.UnsafeOnCompleted(_onCompleted);
    }

    /// <summary>Asks the gateway for what the session's meta contexts describe of the request's window (both at once
    /// when both were selected), then hands the slot to the reply writer. Not the hot path: a task per request is fine.</summary>
    public void AwaitStatus(NbdSession session, IVolumeGateway gateway, CancellationToken ct) => _ = StatusAsync(session, gateway, ct);

    private async Task StatusAsync(NbdSession session, IVolumeGateway gateway, CancellationToken ct)
    {
        try
        {
            var (from, length) = Request.StatusWindow();
            length = Math.Min(length, session.SizeBytes - from);
            // A version's allocation is not mapped: all of it is "not known to be a hole", which is always true.
            var map = session.BaseAllocation && session.Version is null ? gateway.MapAsync(session.Volume, from, length, ct).AsTask() : null;
            var changed = session.ChangedSince is { } since ? gateway.ChangedSinceAsync(session.Volume, since, session.Version, from, length, ct).AsTask() : null;
            EncodeBlockStatus(session.BaseAllocation, map is null ? [] : await map.ConfigureAwait(false),
                changed is null ? null : (await changed.ConfigureAwait(false)).Ranges);
        }
        catch (Exception e)
        {
            Fail(e);
            return;
        }
        _owner.Completed(this);
    }

    private void OnCompleted()
    {
        var awaiter = _awaiter;
        _awaiter = default;
        try { awaiter.GetResult(); }
        catch (Exception e)
        {
            Fail(e);
            return;
        }
        _owner.Completed(this);
    }

    /// <summary>Largest number of extents one BLOCK_STATUS reply carries; the client asks again for the rest.</summary>
    private const int MaximumExtents = 4096;

    /// <summary>Bytes of <see cref="Payload"/> that make up the first of two BLOCK_STATUS chunks (one per meta context);
    /// 0 when the reply is one chunk.</summary>
    public int FirstChunkLength { get; private set; }

    /// <summary>
    /// Encodes one BLOCK_STATUS chunk per selected context, in the payload one after the other: base:allocation from
    /// <paramref name="map"/> when <paramref name="baseAllocation"/>, then cloudfs:changed-since from
    /// <paramref name="changed"/> when it is not null (flag 1 on a changed range, 0 elsewhere).
    /// </summary>
    private void EncodeBlockStatus(bool baseAllocation, IReadOnlyList<MappedRange> map, IReadOnlyList<ChangedRange>? changed)
    {
        int allocationExtents = baseAllocation ? MaxExtentsFor(map.Count) : 0;
        int changedExtents = changed is null ? 0 : MaxExtentsFor(changed.Count);
        var buffer = RentPayload((baseAllocation ? 4 + 8 * allocationExtents : 0) + (changed is null ? 0 : 4 + 8 * changedExtents)).Span;
        int at = 0;
        if (baseAllocation)
            at = EncodeContext(buffer, NbdProtocol.BaseAllocationContextId, allocationExtents,
                map.Select(r => (r.Offset, r.Length, r.Allocated ? 0 : NbdProtocol.StateHole | NbdProtocol.StateZero)));
        FirstChunkLength = baseAllocation && changed is not null ? at : 0;
        if (changed is not null)
            at += EncodeContext(buffer[at..], NbdProtocol.ChangedSinceContextId, changedExtents,
                changed.Select(r => (r.Offset, r.Length, NbdProtocol.StateChanged)));
        _payload = _payload with { Length = at };
    }

    private int MaxExtentsFor(int ranges) => Request.ReqOne ? 1 : Math.Min(MaximumExtents, ranges * 2 + 1);

    /// <summary>
    /// Encodes one context's descriptors for the requested window: u32 context id, then (u32 length, u32 flags) pairs.
    /// Adjacent ranges of the same state merge; a gap the ranges do not describe gets flags 0 (base:allocation: "not
    /// known to be a hole", always a safe answer; changed-since: unchanged). The reply may stop short of the window.
    /// Returns the bytes written.
    /// </summary>
    private int EncodeContext(Span<byte> buffer, uint contextId, int maxExtents, IEnumerable<(long Offset, long Length, uint Flags)> ranges)
    {
        var (from, length) = Request.StatusWindow();
        ulong position = (ulong)from;
        ulong end = (ulong)(from + length);
        BinaryPrimitives.WriteUInt32BigEndian(buffer, contextId);
        int count = 0;
        uint pendingFlags = 0;
        ulong pendingLength = 0;

        bool Emit(ulong length, uint flags, Span<byte> span)
        {
            if (length == 0) return true;
            if (pendingLength > 0 && flags == pendingFlags)
            {
                pendingLength += length;
                return true;
            }
            if (pendingLength > 0)
            {
                if (count == maxExtents) return false;
                BinaryPrimitives.WriteUInt32BigEndian(span[(4 + 8 * count)..], (uint)pendingLength);
                BinaryPrimitives.WriteUInt32BigEndian(span[(8 + 8 * count)..], pendingFlags);
                count++;
            }
            pendingFlags = flags;
            pendingLength = length;
            return true;
        }

        foreach (var range in ranges)
        {
            if (position >= end) break;
            if (range.Length <= 0) continue;
            ulong start = (ulong)Math.Max(range.Offset, 0);
            ulong stop = Math.Min(end, start + (ulong)range.Length);
            if (stop <= position) continue;
            if (start > position)
            {
                if (start >= end) break;
                if (!Emit(start - position, 0, buffer)) break;
                position = start;
            }
            if (!Emit(stop - position, range.Flags, buffer)) break;
            position = stop;
        }
        // The rest of the window: undescribed (base:allocation says "allocated", changed-since "unchanged"), unless the
        // extents ran out (the client asks again from where the reply stopped).
        if (position < end && count < maxExtents) Emit(end - position, 0, buffer);
        if (pendingLength > 0 && count < maxExtents)
        {
            BinaryPrimitives.WriteUInt32BigEndian(buffer[(4 + 8 * count)..], (uint)pendingLength);
            BinaryPrimitives.WriteUInt32BigEndian(buffer[(8 + 8 * count)..], pendingFlags);
            count++;
        }
        return 4 + 8 * count;
    }
}
