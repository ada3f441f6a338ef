// The reusable state of one in-flight request: its header, its pooled payload buffer, and the outcome of the
// gateway call. A connection owns a fixed set of slots, so a request costs no allocation beyond pooled buffers.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

internal sealed class NbdRequestSlot
{
    private readonly NbdConnection _owner;
    private readonly Action _onCompleted;
    private readonly Action _onMapCompleted;
    private ValueTaskAwaiter _awaiter;
    private ValueTaskAwaiter<IReadOnlyList<MappedRange>> _mapAwaiter;

    public NbdRequestSlot(NbdConnection owner)
    {
        _owner = owner;
        // Cached delegates: registering a continuation with them allocates nothing per request.
        _onCompleted = OnCompleted;
        _onMapCompleted = OnMapCompleted;
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

    public void Fail(Exception error) =>
        Fail(NbdErrors.FromException(error, _owner.Log, _owner.Describe(Request)), error is CloudFsException ? error.Message : null);

    /// <summary>Waits for a gateway call, then hands the slot to the reply writer.</summary>
    public void Await(ValueTask pending)
    {
        _awaiter = pending.GetAwaiter();
        if (_awaiter.IsCompleted) OnCompleted();
        else _awaiter.UnsafeOnCompleted(_onCompleted);
    }

    public void AwaitMap(ValueTask<IReadOnlyList<MappedRange>> pending)
    {
        _mapAwaiter = pending.GetAwaiter();
        if (_mapAwaiter.IsCompleted) OnMapCompleted();
        else _mapAwaiter.UnsafeOnCompleted(_onMapCompleted);
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

    private void OnMapCompleted()
    {
        var awaiter = _mapAwaiter;
        _mapAwaiter = default;
        try { EncodeBlockStatus(awaiter.GetResult()); }
        catch (Exception e)
        {
            Fail(e);
            return;
        }
        _owner.Completed(this);
    }

    /// <summary>Largest number of extents one BLOCK_STATUS reply carries; the client asks again for the rest.</summary>
    private const int MaximumExtents = 4096;

    /// <summary>
    /// Encodes base:allocation descriptors for the requested window: u32 context id, then (u32 length, u32 flags)
    /// pairs. Adjacent ranges of the same state merge; a gap the gateway did not describe is reported as allocated
    /// (flags 0, "not known to be a hole"), which is always a safe answer. The reply may stop short of the window.
    /// </summary>
    private void EncodeBlockStatus(IReadOnlyList<MappedRange> ranges)
    {
        var (from, length) = Request.StatusWindow();
        ulong position = (ulong)from;
        ulong end = (ulong)(from + length);
        int maxExtents = Request.ReqOne ? 1 : Math.Min(MaximumExtents, ranges.Count * 2 + 1);
        var buffer = RentPayload(4 + 8 * maxExtents).Span;
        BinaryPrimitives.WriteUInt32BigEndian(buffer, NbdProtocol.BaseAllocationContextId);
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
            if (!Emit(stop - position, range.Allocated ? 0 : NbdProtocol.StateHole | NbdProtocol.StateZero, buffer)) break;
            position = stop;
        }
        if (pendingLength == 0 && count == 0) pendingLength = end - position; // nothing described: say "allocated"
        if (pendingLength > 0 && count < maxExtents)
        {
            BinaryPrimitives.WriteUInt32BigEndian(buffer[(4 + 8 * count)..], (uint)pendingLength);
            BinaryPrimitives.WriteUInt32BigEndian(buffer[(8 + 8 * count)..], pendingFlags);
            count++;
        }
        _payload = _payload with { Length = 4 + 8 * count };
    }
}
