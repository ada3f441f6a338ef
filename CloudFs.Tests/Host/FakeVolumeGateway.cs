// An in-memory IVolumeGateway for the HTTP API's tests: volumes as byte arrays, with switches for the failures the engine reports.
using CloudFs.Actors.Gateway;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Host;

internal sealed class FakeVolumeGateway : IVolumeGateway
{
    private readonly Dictionary<Id160, (VolumeInfo Info, byte[] Data)> _volumes = new();
    public int Flushes;
    public int Writes;
    /// <summary>Reads overlapping this byte range fail as corrupt.</summary>
    public (long Offset, long Length)? Corrupt;

    public Id160 Add(long size, bool writable = true)
    {
        var id = Id160.Random();
        _volumes[id] = (new VolumeInfo(id, size, VolumeMode.Async, id, 1, null, [], writable), new byte[size]);
        return id;
    }

    public byte[] Data(Id160 id) => _volumes[id].Data;

    public Task<IReadOnlyList<VolumeInfo>> ListAsync(CancellationToken ct = default) => Task.FromResult<IReadOnlyList<VolumeInfo>>(_volumes.Values.Select(v => v.Info).ToList());

    public Task<VolumeInfo?> GetAsync(Id160 volume, CancellationToken ct = default) =>
        Task.FromResult(_volumes.TryGetValue(volume, out var v) ? v.Info : null);

    private byte[] Checked(Id160 volume, long offset, long length)
    {
        if (!_volumes.TryGetValue(volume, out var v)) throw new VolumeNotFoundException(volume);
        if (offset % 512 != 0 || length % 512 != 0 || offset < 0 || offset + length > v.Data.Length)
            throw new InvalidRangeException($"bytes {offset}+{length} are misaligned or outside the volume");
        return v.Data;
    }

    public ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        var data = Checked(volume, offset, destination.Length);
        if (Corrupt is { } c && offset < c.Offset + c.Length && c.Offset < offset + destination.Length)
            throw new DataCorruptionException(volume, c.Offset, c.Length, "test");
        data.AsMemory((int)offset, destination.Length).CopyTo(destination);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool fua, CancellationToken ct = default)
    {
        var target = Checked(volume, offset, data.Length);
        if (!_volumes[volume].Info.IsWritable) throw new NotPrimaryException(volume);
        data.CopyTo(target.AsMemory((int)offset));
        Interlocked.Increment(ref Writes);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteZeroesAsync(Id160 volume, long offset, long length, bool fua, CancellationToken ct = default)
    {
        Checked(volume, offset, length).AsSpan((int)offset, (int)length).Clear();
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(Id160 volume, CancellationToken ct = default)
    {
        Interlocked.Increment(ref Flushes);
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<MappedRange>> MapAsync(Id160 volume, long offset, long length, CancellationToken ct = default) =>
        ValueTask.FromResult<IReadOnlyList<MappedRange>>([new MappedRange(offset, length, true)]);
}
