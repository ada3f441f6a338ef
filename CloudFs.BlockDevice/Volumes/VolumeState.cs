// Everything the engine keeps in memory about one volume: identity, its chain heads, its index and lsn table.
using CloudFs.BlockDevice.Index;

namespace CloudFs.BlockDevice.Volumes;

internal sealed class VolumeState(Id160 baseId, long sizeBytes, VolumeMode mode, Id160[] replicas, Id160? branchedFrom, byte[]? secret, ExtentIndex index)
{
    public Id160 BaseId { get; } = baseId;
    /// <summary>The size as of the committed head (a resize entry changes it, under IndexLock).</summary>
    public long SizeBytes { get; set; } = sizeBytes;
    public VolumeMode Mode { get; } = mode;
    /// <summary>The replica set, the primary first; replaced by each view-change entry (under IndexLock).</summary>
    public Id160[] Replicas { get; set; } = replicas;
    public Id160? BranchedFrom { get; } = branchedFrom;
    /// <summary>The secret view-stamp when this host can extend the chain; changed under ChainLock only (a change is a
    /// report change: whether this host is the writer).</summary>
    public byte[]? Secret
    {
        get => _secret;
        set
        {
            if ((_secret is null) != (value is null)) Touch();
            _secret = value;
        }
    }
    private byte[]? _secret = secret;

    /// <summary>When what the host reports of this volume (VolumeInfo) last changed, by <see cref="ChangeClock"/>:
    /// stamped at creation and by <see cref="Touch"/> wherever an input of <see cref="ToInfo"/> changes.</summary>
    public long ChangeStamp = ChangeClock.Next();

    /// <summary>An input of <see cref="ToInfo"/> changed (head, view, writer, size, trash, damage): a new stamp.</summary>
    public void Touch() => ChangeClock.Stamp(ref ChangeStamp);
    /// <summary>The view <see cref="Secret"/> belongs to (its first entry's version); set with Secret under ChainLock.</summary>
    public Id160 SecretView = baseId;

    /// <summary>The committed view: its number (0 until the first view change) and the version of the entry that began it.</summary>
    public long ViewNumber;
    public Id160 View = baseId;

    /// <summary>The name given at creation (null for none).</summary>
    public string? Name { get; init; }
    /// <summary>Unix ms of the committed trash entry; 0 while the volume is not in the trash (under IndexLock).</summary>
    public long TrashedAtUnixMs;

    /// <summary>Guards the submit-side chain (Pending*, Epoch, Secret, Claim): ids are computed in submission order.
    /// Taken only through <see cref="LockChain"/>.</summary>
    private readonly object _chainLock = new();

    /// <summary>Takes the ChainLock; the held value releases it when disposed (<c>using var chain = v.LockChain();</c>).</summary>
    public HeldChain LockChain()
    {
        Monitor.Enter(_chainLock);
        return new HeldChain(this, _chainLock);
    }
    public long PendingLsn;
    public Id160 PendingId, PendingVersion;
    /// <summary>The view number at the pending head: the next view change queued must name this + 1.</summary>
    public long PendingViewNumber;
    public int Epoch;
    /// <summary>The one owner of the chain on this host, or null (docs/WRITE-PATH.md); changed under ChainLock.</summary>
    public ChainClaim? Claim;

    /// <summary>Writer-thread only: the head of what the writer has placed in the log, and the view number there.</summary>
    public long WriterLsn;
    public Id160 WriterId, WriterVersion;
    public long WriterViewNumber;

    /// <summary>Guards the committed state below (index, lsn table, head) against concurrent readers.</summary>
    public object IndexLock { get; } = new();
    public ExtentIndex Index { get; set; } = index;
    public LsnTable Lsns { get; set; } = new();
    public long Lsn;
    public Id160 Version, HeadParent, HeadDigest;
    public long OldestStreamableLsn = 1;
    /// <summary>What this host cannot serve of the volume (under IndexLock); reads that touch it fail.</summary>
    public DamageMap Damage { get; set; } = new();
    /// <summary>Runs of lsns recovery skipped, not yet restored from a replica (under IndexLock; checkpointed).</summary>
    public List<LostEntries> Lost { get; set; } = new();
    /// <summary>The versions `cloudfs protect` keeps, by lsn (under IndexLock; set by Protect entries, checkpointed).</summary>
    public SortedList<long, Id160> Protected { get; set; } = new();
    /// <summary>Lsns a protect being appended keeps until its entry applies (under IndexLock; not checkpointed).</summary>
    public List<long> Pinned { get; } = new();
    /// <summary>The history base (null until retention or a protection needs one; under IndexLock, checkpointed).</summary>
    public HistoryBase? History;
    /// <summary>The lsn just after the history base and when its entry was written, once read (compaction's passes
    /// only, under its gate; not checkpointed): while that entry is younger than the retention cutoff, no later one is
    /// older, and the base stays without reading a header.</summary>
    public (long Lsn, long TimestampUnixMs) AfterHistory;
    /// <summary>The oldest lsn a protection keeps (or a protect being appended), long.MaxValue for none (under IndexLock).</summary>
    public long OldestProtectedLsn => Math.Min(Protected.Count > 0 ? Protected.Keys[0] : long.MaxValue, Pinned.Count > 0 ? Pinned.Min() : long.MaxValue);
    /// <summary>The last entries in stream form, once a replica or a live stream follows the volume (null until then).</summary>
    public Log.RecentEntries? Recent;
    /// <summary>Raised when an entry of the volume is placed in the log or applied (replicas' feeders wait on it).</summary>
    public Log.AppendSignal Appended { get; } = new();
    /// <summary>Set once the creation entry is in the log (a volume is listed only then).</summary>
    public bool Committed;

    public bool IsWritable => Secret is not null;

    /// <summary>Sets every head (pending, writer, committed) to the committed entry and view, as after recovery.</summary>
    /// <summary>Recovery, from a checkpoint: the committed head only (what replay chains onto). The submit-side and
    /// writer heads, and the clear id of the head (a hash), are set once for every volume after replay (<see cref="ResetHeads"/>).</summary>
    public void RestoreCommittedHead(long lsn, Id160 version, Id160 parent, Id160 digest)
    {
        Lsn = lsn;
        Version = version;
        HeadParent = parent;
        HeadDigest = digest;
    }

    public void ResetHeads(long lsn, Id160 version, Id160 parent, Id160 digest)
    {
        Lsn = PendingLsn = WriterLsn = lsn;
        PendingViewNumber = WriterViewNumber = ViewNumber;
        Version = PendingVersion = WriterVersion = version;
        HeadParent = parent;
        HeadDigest = digest;
        // The clear id of the head is never stored: its holder recomputes it from the head's parent and digest.
        var id = Secret is null ? Id160.Zero : VersionChain.NextId(Secret, parent, digest);
        PendingId = WriterId = id;
    }

    /// <summary>
    /// Under ChainLock (<paramref name="chain"/>), when an entry failed to append: the entries queued after it chained
    /// onto it, so they are abandoned (a new epoch) and the chain restarts at what the writer has placed.
    /// </summary>
    public void RestartAtWriterHead(HeldChain chain)
    {
        System.Diagnostics.Debug.Assert(ReferenceEquals(chain.Volume, this));
        Epoch++;
        PendingLsn = WriterLsn;
        PendingVersion = WriterVersion;
        PendingId = WriterId;
        PendingViewNumber = WriterViewNumber;
    }

    public VolumeInfo ToInfo() => new(BaseId, SizeBytes, Mode, Version, Lsn, BranchedFrom, Replicas, IsWritable)
    {
        ViewNumber = ViewNumber,
        View = View,
        Damage = Damage.Count == 0 ? [] : Damage.Snapshot(),
        Name = Name,
        TrashedAt = TrashedAtUnixMs == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(TrashedAtUnixMs),
        Protected = Protected.Count == 0 ? [] : Protected.Values.ToArray(),
    };
}
