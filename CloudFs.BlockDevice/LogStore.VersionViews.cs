// Reading an older version of a volume while the volume takes writes (the NBD export VOL@VERSION): a read-only view
// is the version's extent index, built as a branch builds it (BranchIndex: the index as of that lsn, frozen), kept in
// memory while it is read and registered with compaction (AllIndexes), which relocates what it reads like any
// branch's parent. No volume is created and nothing is written. A view unused for ViewKeep is dropped.
using System.Collections.Concurrent;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    /// <summary>How long a version view nobody reads stays in memory (and keeps what it reads from compaction).</summary>
    public static readonly TimeSpan VersionViewKeep = TimeSpan.FromMinutes(5);

    /// <summary>A frozen index of one version and its size; <see cref="Owner"/> is the volume whose chain holds the version.</summary>
    private sealed class VersionView(Id160 version, VolumeState owner, ExtentIndex index, long sizeBytes)
    {
        public Id160 Version { get; } = version;
        public VolumeState Owner { get; } = owner;
        public ExtentIndex Index { get; } = index;
        /// <summary>The volume's size at the version (LogStore.VersionSizes.cs): the export's size, the reads' bound.</summary>
        public long SizeBytes { get; } = sizeBytes;
        public long LastUsedTicks = Environment.TickCount64;
    }

    private readonly ConcurrentDictionary<(Id160 Volume, Id160 Version), Lazy<Task<VersionView>>> _versionViews = new();

    /// <summary>
    /// Reads a 512-aligned range of <paramref name="volume"/> as it was at <paramref name="version"/> (of its own chain
    /// or of a chain it was branched from), within the version's size (<see cref="VersionSizeAsync"/>). An empty
    /// <paramref name="destination"/> only checks that the version can be read. Throws
    /// <see cref="UnknownVersionException"/>, <see cref="InvalidRangeException"/> (not in the volume's history, or out
    /// of range) and <see cref="VersionCompactedException"/> (naming the oldest version available).
    /// </summary>
    public async ValueTask ReadVersionAsync(Id160 volume, Id160 version, long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        var vol = Volume(volume);
        CheckRange(offset, destination.Length, long.MaxValue, $"volume {volume}");
        var view = await ViewOf(vol, version).ConfigureAwait(false);
        Volatile.Write(ref view.LastUsedTicks, Environment.TickCount64);
        CheckRange(offset, destination.Length, view.SizeBytes, $"version {version} of volume {volume}");
        if (destination.Length == 0) return;
        ct.ThrowIfCancellationRequested();
        var extents = new List<Extent>();
        var first = offset / BlockSize;
        var slot = EnterRead();
        try
        {
            lock (view.Owner.IndexLock) view.Index.Lookup(first, destination.Length / BlockSize, extents);
            var runs = extents.ToArray();
            await Task.Run(() => Fill(view.Owner, first, runs, destination.Span), CancellationToken.None).ConfigureAwait(false);
        }
        finally { ExitRead(slot); }
    }

    /// <summary>The view of <paramref name="version"/> for reads of <paramref name="vol"/>, built once (concurrent
    /// readers share the build); views idle for <see cref="VersionViewKeep"/> are dropped on the way.</summary>
    private Task<VersionView> ViewOf(VolumeState vol, Id160 version)
    {
        DropIdleVersionViews();
        var key = (vol.BaseId, version);
        var lazy = _versionViews.GetOrAdd(key, _ => new Lazy<Task<VersionView>>(() => BuildViewAsync(vol, version)));
        var task = lazy.Value;
        // A failed build is not kept: the next reader tries again (and hears the same refusal, or succeeds).
        if (task.IsFaulted || task.IsCanceled) _versionViews.TryRemove(new KeyValuePair<(Id160, Id160), Lazy<Task<VersionView>>>(key, lazy));
        return task;
    }

    private async Task<VersionView> BuildViewAsync(VolumeState vol, Id160 version)
    {
        await Task.Yield(); // headers are read off the caller's thread
        // No relocation between the lookup of the version's entries and the view's registration.
        await _compactionGate.WaitAsync().ConfigureAwait(false);
        try
        {
            var (ownerId, lsn) = LocateInHistory(version);
            VolumeState owner;
            long head;
            lock (vol.IndexLock) head = vol.Lsn;
            if (ownerId == vol.BaseId) owner = vol;
            else
            {
                var path = Ancestry(vol, head);
                var at = path.FindIndex(p => p.Vol.BaseId == ownerId);
                if (at < 0) throw new InvalidRangeException($"version {version} is not in the history of volume {vol.BaseId} (its own chain or a chain it was branched from)");
                owner = path[at].Vol;
            }
            var (index, size) = BranchIndex(owner, lsn, version);
            return new VersionView(version, owner, index, size);
        }
        finally { _compactionGate.Release(); }
    }

    private void DropIdleVersionViews()
    {
        var now = Environment.TickCount64;
        foreach (var (key, lazy) in _versionViews)
            if (lazy.IsValueCreated && lazy.Value is { IsCompletedSuccessfully: true } t
                && now - Volatile.Read(ref t.Result.LastUsedTicks) > (long)VersionViewKeep.TotalMilliseconds)
                _versionViews.TryRemove(new KeyValuePair<(Id160, Id160), Lazy<Task<VersionView>>>(key, lazy));
    }

    /// <summary>The indexes of the version views in memory, for compaction (what they read is live).</summary>
    private IEnumerable<(Id160 Volume, ExtentIndex Index, VolumeState Owner)> VersionViewIndexes()
    {
        foreach (var lazy in _versionViews.Values)
            if (lazy.IsValueCreated && lazy.Value is { IsCompletedSuccessfully: true } t)
                for (var x = t.Result.Index; x is not null; x = x.Parent)
                    yield return (t.Result.Owner.BaseId, x, t.Result.Owner);
    }
}
