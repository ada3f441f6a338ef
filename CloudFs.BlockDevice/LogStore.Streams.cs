// Applying version streams: the public entry points over the one apply loop (Streams/StreamApply), and the chain
// admission of each streamed entry it asks for (creation and branch entries, chained entries, repeats and forks).
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Index;
using CloudFs.BlockDevice.Log;
using CloudFs.BlockDevice.Streams;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore : IStreamTarget
{
    /// <summary>
    /// Reads a stream and appends its entries in order, each verified first (checksums, chain, lsn, bounds).
    /// The first bad entry stops the apply; entries before it stay applied and durable.
    /// </summary>
    /// <param name="import">False: a creation or branch entry of a volume this host does not hold stops the apply
    /// (refused, nothing of it applied): taking in a volume from elsewhere is an import, which the caller asks for.</param>
    public async Task<ApplyResult> ApplyAsync(Stream source, CancellationToken ct = default, bool import = true)
    {
        ThrowIfDisposed();
        return await StreamApply.Whole(this, import).RunAsync(source, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies a stream that may never end (follow mode), with the checks, stop rule and result of
    /// <see cref="ApplyAsync"/>. Whenever the source has nothing more ready, and every ~4 MiB or 256 entries, everything
    /// applied so far is flushed (group commit) and <paramref name="onDurable"/> is called, in order, with each volume's
    /// durable head when it grew (entries already held count: they are durable here too). Runs until the source ends, a
    /// bad entry, or <paramref name="ct"/>; on cancellation what was applied is still made durable and reported, then
    /// <see cref="OperationCanceledException"/> is thrown. A source that fails (I/O error) ends it like a truncated
    /// stream: an <see cref="ApplyResult"/> whose Error says so. On return a read of the source may still be pending
    /// (when the source ignores cancellation); disposing the source ends it. IsFork is set exactly when the refused entry conflicts
    /// with the chain held here (another version at a held lsn, or a next lsn that does not chain onto the head).
    /// </summary>
    public Task<ApplyResult> ApplyLiveAsync(Stream source, Action<ApplyProgress> onDurable, CancellationToken ct = default) =>
        ApplyLiveAsync(source, onDurable, null, null, ct);

    /// <summary>
    /// As <see cref="ApplyLiveAsync(Stream, Action{ApplyProgress}, CancellationToken)"/>, and <paramref name="onWritten"/>
    /// is called with a volume's head each time an entry is in the log (written, not yet flushed: as a local write
    /// before the next flush); entries already held count at once. It runs on a pool thread right after each write
    /// completes: it must be quick, and a report may overtake one for an earlier lsn (keep the highest). With <paramref name="flushes"/> (a
    /// stream of one volume), a pause of the stream flushes only what was asked for or has waited its MaxDelay; the
    /// every-256-entries / 4 MiB flushes and the final one stay.
    /// </summary>
    public async Task<ApplyResult> ApplyLiveAsync(Stream source, Action<ApplyProgress> onDurable, Action<ApplyProgress>? onWritten,
        LiveFlushes? flushes, CancellationToken ct = default)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(onDurable);
        return await StreamApply.Live(this, onDurable, onWritten, flushes).RunAsync(source, ct).ConfigureAwait(false);
    }

    // ---- IStreamTarget: the engine's side of an apply (Streams/StreamApply) ----

    bool IStreamTarget.Holds(Id160 volume) => _volumes.ContainsKey(volume);

    Task IStreamTarget.FlushAsync()
    {
        var flush = new FlushItem();
        _appender.Enqueue(flush);
        return flush.Done.Task;
    }

    void IStreamTarget.Log(string message) => _options.Log?.Invoke(message);

    /// <summary>Chain admission of a streamed entry; on success it is queued with its own lsn, parent and version.</summary>
    StreamAdmission IStreamTarget.Admit(EntryBuffer buf, EntryHeader h)
    {
        if (h.Kind is EntryKind.Create or EntryKind.Branch)
        {
            var err = CheckCreation(buf.Span, h, out var payload);
            if (err is not null) return StreamAdmission.Refused(err);
            if (_volumes.ContainsKey(h.Volume)) return StreamAdmission.Held; // already held: the same chain start
            ExtentIndex index;
            if (h.Kind == EntryKind.Branch)
            {
                long lsn;
                try
                {
                    lsn = FindVersion(payload!.SourceVersion!.Value).Lsn;
                    index = BranchIndex(Volume(payload.SourceVolume!.Value), lsn, payload.SourceVersion!.Value).Index;
                }
                catch (UnknownVersionException) { return StreamAdmission.Refused($"the branch source version {payload!.SourceVersion} is not held here"); }
                catch (VersionCompactedException e) { return StreamAdmission.Refused($"the branch source version {payload!.SourceVersion} is compacted away here: {e.Message}"); }
            }
            else index = new ExtentIndex();
            var secret = Ownership.CreatorSecret(h, out var clearId);
            var v = new VolumeState(h.Volume, payload!.SizeBytes, payload.Mode, payload.Replicas, payload.SourceVersion, secret, index)
            {
                Name = payload.Name,
                PendingLsn = 1, PendingVersion = h.Version, PendingId = clearId,
            };
            if (!_volumes.TryAdd(h.Volume, v)) return StreamAdmission.Held;
            var item = new EntryItem(buf, v, h.Kind, 1, h.Version, 0, durable: false) { ClearId = clearId };
            _appender.Enqueue(item);
            return StreamAdmission.Queued(item);
        }
        if (!_volumes.TryGetValue(h.Volume, out var vol)) return StreamAdmission.Refused($"volume {h.Volume} is not held here");
        using (var chain = vol.LockChain())
        {
            if (h.Lsn <= vol.PendingLsn)
            {
                // Already held? Then it is a harmless repeat; a different entry at a held lsn is a fork.
                long block = -1;
                lock (vol.IndexLock) if (h.Lsn <= vol.Lsn) block = vol.Lsns.BlockOf(h.Lsn);
                if (block >= 0 && SameVersionAt(vol, block, h.Version)) return StreamAdmission.Held;
                return StreamAdmission.Refused($"volume {vol.BaseId}: lsn {h.Lsn} is already held with another version (a fork)", isFork: true);
            }
            if (h.Lsn != vol.PendingLsn + 1) return StreamAdmission.Refused($"volume {vol.BaseId}: lsn {h.Lsn} does not follow the head lsn {vol.PendingLsn}");
            if (VersionChain.PublicOf(h.Parent) != vol.PendingVersion)
                return StreamAdmission.Refused($"volume {vol.BaseId}: the entry at lsn {h.Lsn} does not chain onto version {vol.PendingVersion} (a fork)", isFork: true);
            // A chain this host's writer owns takes no entry from elsewhere (repeats of held entries are fine, above).
            if (Ownership.ClaimRefusal(chain, null) is { } claimed) return StreamAdmission.Refused(claimed.Message, isClaimed: true);
            var refused = Ownership.AdmitChainedLocked(chain, buf, h, Id160.Zero, durable: false, out var item);
            return refused is null ? StreamAdmission.Queued(item!) : StreamAdmission.Refused(refused);
        }
    }

    private bool SameVersionAt(VolumeState vol, long block, Id160 version)
    {
        var meta = new byte[EntryHeader.Size * (1 + EntryHeader.TableSectorsFor(MaxEntryBlocks))];
        try { return ReadEntryMeta(block, meta, vol.BaseId).Version == version; }
        catch (DataCorruptionException) { return false; }
    }
}
