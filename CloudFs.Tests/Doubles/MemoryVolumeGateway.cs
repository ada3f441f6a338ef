// A test double of IVolumeGateway that keeps volumes in memory with the engine's semantics: zeros where nothing was
// written, allocation tracked per 512-byte sector for MapAsync, the engine's exceptions for bad ranges, plus faults
// a test can switch on (log full, not primary, corrupt range, a gate that holds reads).
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.Actors.Volumes.Queries;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Doubles;

public sealed class MemoryVolumeGateway : IVolumeGateway
{
    public const int Sector = 512;

    /// <summary>The term of the volumes' attachment leases (their holders renew every third of it).</summary>
    public TimeSpan LeaseTerm { get; init; } = WriterAttachments.Term;

    private sealed class Volume(VolumeInfo info, TimeSpan leaseTerm)
    {
        public VolumeInfo Info = info;
        public readonly byte[] Data = new byte[info.SizeBytes];
        public readonly bool[] Allocated = new bool[info.SizeBytes / Sector];
        public Exception? WriteFault;
        public (long Offset, long Length)? CorruptRange;
        public Func<long, Task>? ReadGate;
        /// <summary>Versions a test marked: the bytes then, and the sectors written since.</summary>
        public readonly Dictionary<Id160, (byte[] Data, bool[] Changed)> Versions = new();
        public readonly HashSet<Id160> Compacted = new();

        public void Changed(long offset, long length)
        {
            foreach (var (_, changed) in Versions.Values) changed.AsSpan((int)(offset / Sector), (int)(length / Sector)).Fill(true);
        }

        // The writer's lease, as a primary keeps it (no grace: this volume never moves).
        public readonly WriterAttachment Attachment = new(leaseTerm, 0, 0, WriterAttachment.Now);
    }

    public Task<AttachmentAnswer> AcquireAttachmentAsync(AcquireAttachment request, CancellationToken ct = default)
    {
        var answer = Get(request.VolumeId).Attachment.Acquire(request);
        AfterAcquire?.Invoke();
        return Task.FromResult(answer);
    }

    /// <summary>Called after the writer answered an attachment request (the answer is decided by then).</summary>
    public Action? AfterAcquire { get; set; }

    public async Task<AttachmentReleased> ReleaseAttachmentAsync(ReleaseAttachment request, CancellationToken ct = default)
    {
        Interlocked.Increment(ref _releasesAsked);
        if (ReleaseGate is { } gate) await gate; // not cancelled: the release is applied when the test lets it through
        return Get(request.VolumeId).Attachment.Release(request);
    }

    /// <summary>While set, a release waits for it: the writer has not answered yet (a test holds it).</summary>
    public Task? ReleaseGate { get; set; }

    private int _releasesAsked;

    /// <summary>Attachment releases asked for so far (answered or held at <see cref="ReleaseGate"/>).</summary>
    public int ReleasesAsked => Volatile.Read(ref _releasesAsked);

    private readonly Dictionary<Id160, Volume> _volumes = new();
    private long _flushes, _writes;

    /// <summary>FLUSH requests and FUA writes seen.</summary>
    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>Writes and zero-writes that changed a volume.</summary>
    public long Writes => Interlocked.Read(ref _writes);

    public Id160 AddVolume(long sizeBytes, bool writable = true)
    {
        if (sizeBytes % Sector != 0) throw new ArgumentException("size must be a multiple of 512", nameof(sizeBytes));
        var id = Id160.Random();
        var info = new VolumeInfo(id, sizeBytes, VolumeMode.Async, id, 1, null, [], writable);
        lock (_volumes) _volumes[id] = new Volume(info, LeaseTerm);
        return id;
    }

    /// <summary>A version of the volume as it reads now: changed-since queries and version reads name it.</summary>
    public Id160 MarkVersion(Id160 volume)
    {
        var v = Get(volume);
        var version = Id160.Random();
        lock (v) v.Versions[version] = (v.Data.ToArray(), new bool[v.Allocated.Length]);
        return version;
    }

    /// <summary>The version is past what compaction kept: asking for it fails as the engine's does.</summary>
    public void CompactVersion(Id160 volume, Id160 version)
    {
        var v = Get(volume);
        lock (v)
        {
            v.Versions.Remove(version);
            v.Compacted.Add(version);
        }
    }

    /// <summary>Every later write/zero on the volume throws this (null clears it).</summary>
    public void SetWriteFault(Id160 volume, Exception? fault) { lock (_volumes) Get(volume).WriteFault = fault; }

    /// <summary>Reads overlapping this range fail their checksum, as a flipped byte on disk would.</summary>
    public void Corrupt(Id160 volume, long offset, long length) { lock (_volumes) Get(volume).CorruptRange = (offset, length); }

    /// <summary>Each read awaits this (given the read's offset) before it copies: lets a test complete reads out of order.</summary>
    public void SetReadGate(Id160 volume, Func<long, Task>? gate) { lock (_volumes) Get(volume).ReadGate = gate; }

    /// <summary>The volume's live bytes: a test may seed them before a front end reads them.</summary>
    public byte[] Data(Id160 volume) => Get(volume).Data;

    /// <summary>A copy of stored bytes, to check what the server wrote.</summary>
    public byte[] Peek(Id160 volume, long offset, int length)
    {
        var v = Get(volume);
        lock (v) return v.Data.AsSpan((int)offset, length).ToArray();
    }

    public Task<IReadOnlyList<VolumeInfo>> ListAsync(CancellationToken ct = default)
    {
        lock (_volumes) return Task.FromResult<IReadOnlyList<VolumeInfo>>(_volumes.Values.Select(v => v.Info).OrderBy(i => i.BaseId).ToList());
    }

    public Task<VolumeInfo?> GetAsync(Id160 volume, CancellationToken ct = default)
    {
        lock (_volumes) return Task.FromResult(_volumes.TryGetValue(volume, out var v) ? v.Info : null);
    }

    public Task<VolumeInfo?> FindAsync(string volume, CancellationToken ct = default)
    {
        if (Id160.TryParse(volume, out var id)) return GetAsync(id, ct);
        lock (_volumes) return Task.FromResult(_volumes.Values.Select(v => v.Info).FirstOrDefault(i => i.Name == volume));
    }

    public ValueTask ReadAsync(Id160 volume, long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        var v = Get(volume);
        Check(v, offset, destination.Length);
        if (v.CorruptRange is { } bad && offset < bad.Offset + bad.Length && bad.Offset < offset + destination.Length)
            throw new DataCorruptionException(volume, bad.Offset, bad.Length, "crc32c mismatch (injected)");
        if (v.ReadGate is { } gate) return GatedReadAsync(v, gate, offset, destination);
        lock (v) v.Data.AsSpan((int)offset, destination.Length).CopyTo(destination.Span);
        return ValueTask.CompletedTask;
    }

    private static async ValueTask GatedReadAsync(Volume v, Func<long, Task> gate, long offset, Memory<byte> destination)
    {
        await gate(offset);
        lock (v) v.Data.AsSpan((int)offset, destination.Length).CopyTo(destination.Span);
    }

    public ValueTask WriteAsync(Id160 volume, long offset, ReadOnlyMemory<byte> data, bool fua, long attachment = 0, CancellationToken ct = default)
    {
        var v = Get(volume);
        CheckWritable(v);
        Fence(v, attachment);
        Check(v, offset, data.Length);
        lock (v)
        {
            data.Span.CopyTo(v.Data.AsSpan((int)offset));
            v.Allocated.AsSpan((int)(offset / Sector), data.Length / Sector).Fill(true);
            v.Changed(offset, data.Length);
        }
        Interlocked.Increment(ref _writes);
        if (fua) Interlocked.Increment(ref _flushes);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteZeroesAsync(Id160 volume, long offset, long length, bool fua, long attachment = 0, CancellationToken ct = default)
    {
        var v = Get(volume);
        CheckWritable(v);
        Fence(v, attachment);
        Check(v, offset, length);
        lock (v)
        {
            v.Data.AsSpan((int)offset, (int)length).Clear();
            v.Allocated.AsSpan((int)(offset / Sector), (int)(length / Sector)).Fill(false);
            v.Changed(offset, length);
        }
        Interlocked.Increment(ref _writes);
        if (fua) Interlocked.Increment(ref _flushes);
        return ValueTask.CompletedTask;
    }

    /// <summary>As the volume's writer does: a request made under a superseded attachment lease is refused.</summary>
    private static void Fence(Volume v, long attachment)
    {
        if (attachment != 0 && v.Attachment.Refusal(attachment) is { } why)
            throw new AttachmentFencedException($"volume {v.Info.BaseId}: {why}: its writes are refused");
    }

    public ValueTask FlushAsync(Id160 volume, long attachment = 0, CancellationToken ct = default)
    {
        Fence(Get(volume), attachment);
        Interlocked.Increment(ref _flushes);
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<MappedRange>> MapAsync(Id160 volume, long offset, long length, CancellationToken ct = default)
    {
        var v = Get(volume);
        Check(v, offset, length);
        var ranges = new List<MappedRange>();
        lock (v)
        {
            long start = offset;
            bool state = v.Allocated[offset / Sector];
            for (long at = offset + Sector; at <= offset + length; at += Sector)
            {
                if (at == offset + length || v.Allocated[at / Sector] != state)
                {
                    ranges.Add(new MappedRange(start, at - start, state));
                    if (at < offset + length)
                    {
                        start = at;
                        state = v.Allocated[at / Sector];
                    }
                }
            }
        }
        return ValueTask.FromResult<IReadOnlyList<MappedRange>>(ranges);
    }

    public ValueTask ReadVersionAsync(Id160 volume, Id160 version, long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        var v = Get(volume);
        lock (v)
        {
            if (v.Compacted.Contains(version))
                throw new VersionCompactedException(version, $"version {version} is no longer available: the history after it was compacted away (test double)");
            // The current version reads as the volume does now.
            var data = version == v.Info.CurrentVersion ? v.Data
                : v.Versions.TryGetValue(version, out var marked) ? marked.Data : throw new UnknownVersionException(version);
            if (destination.Length == 0) return ValueTask.CompletedTask;
            Check(v, offset, destination.Length);
            data.AsSpan((int)offset, destination.Length).CopyTo(destination.Span);
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask<long> VersionSizeAsync(Id160 volume, Id160 version, CancellationToken ct = default)
    {
        var v = Get(volume);
        lock (v)
        {
            if (v.Compacted.Contains(version))
                throw new VersionCompactedException(version, $"version {version} is no longer available: the history after it was compacted away (test double)");
            if (!v.Versions.TryGetValue(version, out var marked)) throw new UnknownVersionException(version);
            return ValueTask.FromResult((long)marked.Data.Length);
        }
    }

    /// <summary>Up to the current version only (its id: the volume's <see cref="VolumeInfo.CurrentVersion"/>, which
    /// writes here do not move); a version of another volume as <paramref name="until"/> is refused as the engine does.</summary>
    public ValueTask<ChangedSinceResult> ChangedSinceAsync(Id160 volume, Id160 since, Id160? until, long offset, long length, CancellationToken ct = default)
    {
        var v = Get(volume);
        if (until is { } u && u != v.Info.CurrentVersion)
        {
            lock (_volumes)
                if (_volumes.Values.Any(o => o != v && (o.Info.CurrentVersion == u || o.Versions.ContainsKey(u))))
                    throw new InvalidRangeException($"version {u} is not a version of volume {volume}");
            if (!v.Versions.ContainsKey(u)) throw new UnknownVersionException(u);
            throw new NotSupportedException("the test double diffs against the current version only");
        }
        var ranges = new List<ChangedRange>();
        var result = new ChangedSinceResult(ranges) { To = v.Info.CurrentVersion, ToSizeBytes = v.Info.SizeBytes };
        lock (v)
        {
            if (v.Compacted.Contains(since))
                throw new VersionCompactedException(since, $"version {since} is no longer available: the history after it was compacted away (test double)");
            if (!v.Versions.TryGetValue(since, out var marked)) throw new UnknownVersionException(since);
            if (length == 0) return ValueTask.FromResult(result);
            Check(v, offset, length);
            for (var at = offset; at < offset + length; at += Sector)
            {
                if (!marked.Changed[at / Sector]) continue;
                if (ranges.Count > 0 && ranges[^1].End == at) ranges[^1] = ranges[^1] with { Length = ranges[^1].Length + Sector };
                else ranges.Add(new ChangedRange(at, Sector));
            }
        }
        return ValueTask.FromResult(result);
    }

    private Volume Get(Id160 volume)
    {
        lock (_volumes) return _volumes.TryGetValue(volume, out var v) ? v : throw new VolumeNotFoundException(volume);
    }

    private static void Check(Volume v, long offset, long length)
    {
        if (offset % Sector != 0 || length % Sector != 0)
            throw new InvalidRangeException($"offset {offset} and length {length} must be multiples of {Sector}");
        if (offset < 0 || length <= 0 || offset + length > v.Info.SizeBytes)
            throw new InvalidRangeException($"bytes {offset}+{length} are outside the volume's {v.Info.SizeBytes} bytes");
    }

    private static void CheckWritable(Volume v)
    {
        if (!v.Info.IsWritable) throw new NotPrimaryException(v.Info.BaseId);
        if (v.WriteFault is { } fault) throw fault;
    }
}
