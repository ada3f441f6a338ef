// `cloudfs verify --deep` on one host: a digest of every range of a volume's live content, read and verified like a
// client read, and valid only if the volume's head did not move meanwhile.
using System.Buffers.Binary;
using System.Security.Cryptography;
using CloudFs.BlockDevice.Index;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>
    /// Digests <paramref name="volume"/> in ranges of <paramref name="rangeBytes"/> (a positive multiple of 512) as of
    /// its head. Reads only stored blocks (holes cost nothing), verifies them against their CRCs, and marks a range
    /// unreadable instead of failing when a block does not verify or is damaged. Throws
    /// <see cref="VolumeMovedException"/> when the head moved before the digest was done (a write or an applied entry).
    /// </summary>
    public async Task<VolumeDigest> DigestAsync(Id160 volume, long rangeBytes, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        if (rangeBytes <= 0 || rangeBytes % BlockSize != 0) throw new InvalidRangeException($"a digest range must be a positive multiple of {BlockSize} bytes, not {rangeBytes}");
        long lsn;
        Id160 version;
        lock (vol.IndexLock) { lsn = vol.Lsn; version = vol.Version; }
        var count = (int)((vol.SizeBytes + rangeBytes - 1) / rangeBytes);
        var digests = new byte[count * VolumeDigest.DigestSize];
        var unreadable = new List<int>();
        await Task.Run(() =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var extents = new List<Extent>();
            var window = new byte[ReadChunk];
            Span<byte> full = stackalloc byte[32];
            Span<byte> offsetBytes = stackalloc byte[8];
            for (var r = 0; r < count; r++)
            {
                ct.ThrowIfCancellationRequested();
                var start = r * rangeBytes;
                var end = Math.Min(vol.SizeBytes, start + rangeBytes);
                var ok = true;
                for (var at = start; at < end && ok; at += ReadChunk)
                {
                    var len = (int)Math.Min(ReadChunk, end - at);
                    extents.Clear();
                    var slot = EnterRead();
                    try
                    {
                        lock (vol.IndexLock)
                        {
                            if (vol.Damage.Count > 0 && vol.Damage.FirstOverlap(at, len) is not null) { ok = false; break; }
                            vol.Index.Lookup(at / BlockSize, len / BlockSize, extents);
                        }
                        foreach (var e in extents)
                        {
                            if (e.IsZero) continue;
                            var bytes = window.AsSpan(0, e.Count * BlockSize);
                            if (ReadRunChecked(vol, e, bytes, null) is not null) { ok = false; break; }
                            for (var i = 0; i < e.Count; i++)
                            {
                                var block = bytes.Slice(i * BlockSize, BlockSize);
                                if (!block.ContainsAnyExcept((byte)0)) continue;
                                BinaryPrimitives.WriteInt64LittleEndian(offsetBytes, (e.Start + i) * BlockSize);
                                sha.AppendData(offsetBytes);
                                sha.AppendData(block);
                            }
                        }
                    }
                    finally { ExitRead(slot); }
                }
                sha.GetHashAndReset(full);
                if (ok) full[..VolumeDigest.DigestSize].CopyTo(digests.AsSpan(r * VolumeDigest.DigestSize));
                else unreadable.Add(r);
            }
        }, ct).ConfigureAwait(false);
        lock (vol.IndexLock)
            if (vol.Lsn != lsn || vol.Version != version) throw new VolumeMovedException(volume, lsn, vol.Lsn);
        return new VolumeDigest(lsn, version, rangeBytes, digests, unreadable);
    }
}
