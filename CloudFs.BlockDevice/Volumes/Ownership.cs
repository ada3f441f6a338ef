// Who may extend a volume's chain on this host. Secret shares and view change: the primary splits its secret view-stamp
// into Shamir shares sealed for the replica hosts; on failover a replica recovers the secret from a majority of shares
// and appends a view-change entry under a new secret, so a stale primary can no longer extend the chain the replicas
// accept. The writability rule: a host is a volume's writer iff its key-file secret regenerates the volume's head. And
// the chain claim (docs/WRITE-PATH.md): one owner per volume's chain on this host, whose check lives here, once, and
// every door that changes a chain asks it under the volume's ChainLock (a HeldChain it passes).
using System.Security.Cryptography;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Log;

namespace CloudFs.BlockDevice.Volumes;

/// <summary>
/// The ownership of the volumes of one store (<see cref="LogStore.Ownership"/>): the host key, the secrets and shares of
/// the key file, view changes (take-over) and the chain claim. The volumes' secrets and claims are changed only here
/// and under their ChainLock.
/// </summary>
public sealed class Ownership
{
    private readonly LogStore _store;
    private readonly LogStoreOptions _options;
    private readonly KeyFile _keys;

    internal Ownership(LogStore store, LogStoreOptions options, KeyFile keys)
    {
        _store = store;
        _options = options;
        _keys = keys;
    }

    private Id160 HostId => _store.HostId;

    /// <summary>Subsets of shares TakeOverAsync tries before giving up (C(10,5) = 252 covers any replica set).</summary>
    private const int MaxShareCombinations = 4096;

    /// <summary>This host's P-256 ECDH public key (SubjectPublicKeyInfo DER); the private part is only in the key file.</summary>
    public byte[] HostPublicKey => (byte[])_keys.HostKey.PublicKey.Clone();

    /// <summary>
    /// The shares of the current view's secret for <paramref name="holders"/>, each sealed for that holder's public key.
    /// The secret is split once per view among the volume's whole replica set (share x = the holder's position in it,
    /// threshold = a majority of it), deterministically: shares sealed at different times for different holders
    /// combine. A holder outside the replica set is refused. A volume without a recorded replica set splits among
    /// the holders given. Only on the writable host (else <see cref="NotPrimaryException"/>).
    /// </summary>
    public IReadOnlyList<SealedShare> SealShares(Id160 volume, IReadOnlyList<ShareHolder> holders)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(holders);
        var vol = _store.Volume(volume);
        if (holders.Count == 0 || holders.Count > 255) throw new CloudFsException($"volume {volume}: shares are split among 1..255 holders, not {holders.Count}");
        if (holders.Select(h => h.Host).Distinct().Count() != holders.Count) throw new CloudFsException($"volume {volume}: a host appears twice among the share holders");
        byte[] secret;
        Id160 view;
        using (vol.LockChain())
        {
            if (vol.Secret is null) throw new NotPrimaryException(volume);
            secret = vol.Secret;
            view = vol.SecretView;
        }
        var keys = new ECDiffieHellman[holders.Count];
        try
        {
            for (var i = 0; i < holders.Count; i++)
                keys[i] = HostKey.ImportPublic(holders[i].PublicKey ?? [], out var error)
                          ?? throw new CloudFsException($"share holder {holders[i].Host}: its public key is unusable ({error})");
            Id160[] set;
            lock (vol.IndexLock) set = vol.Replicas.Length > 0 ? vol.Replicas : holders.Select(h => h.Host).ToArray();
            var n = set.Length;
            if (n > 255) throw new CloudFsException($"volume {volume}: shares are split among 1..255 hosts, not {n}");
            var k = n / 2 + 1;
            var ys = Shamir.Split(secret, n, k, view.ToArray());
            var sealedShares = new SealedShare[holders.Count];
            try
            {
                for (var i = 0; i < holders.Count; i++)
                {
                    var at = Array.IndexOf(set, holders[i].Host);
                    if (at < 0) throw new CloudFsException($"volume {volume}: host {holders[i].Host} is not in its replica set");
                    var plain = new SecretShare((byte)(at + 1), (byte)k, (byte)n, ys[at]).Encode();
                    sealedShares[i] = new SealedShare(volume, holders[i].Host, view, HostKey.Seal(keys[i], plain, ShareContext(volume, holders[i].Host, view)));
                    CryptographicOperations.ZeroMemory(plain);
                }
            }
            finally
            {
                foreach (var y in ys) CryptographicOperations.ZeroMemory(y);
            }
            return sealedShares;
        }
        finally
        {
            foreach (var key in keys) key?.Dispose();
        }
    }

    /// <summary>
    /// Opens a share sealed for this host and keeps it durably in the key file (replacing the volume's previous
    /// share) before returning. A share for another host, one that does not open, or one for a view older than the
    /// volume's current view here is refused with <see cref="CloudFsException"/>, and nothing is stored.
    /// </summary>
    public void StoreShare(SealedShare share)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(share);
        if (share.Host != HostId)
            throw new CloudFsException($"the share of volume {share.Volume} is sealed for host {share.Host}, not for this host {HostId}");
        var opened = OpenShare(share, out var error)
                     ?? throw new CloudFsException($"the share of volume {share.Volume} for view {share.View} is refused: {error}");
        // A share may arrive before the volume (or its newest view) has been streamed here, so an unknown view is
        // accepted; a view this host knows to be behind the current one is stale and must not replace a good share.
        if (_store.VolumeStates.TryGetValue(share.Volume, out var vol) && vol.Committed)
        {
            Id160 current;
            lock (vol.IndexLock) current = vol.View;
            if (share.View != current && IsVersionOf(share.Volume, share.View))
                throw new CloudFsException($"the share of volume {share.Volume} is for view {share.View}, which is older than the current view {current}");
        }
        _keys.PutShare(share.Volume, share.View, opened);
    }

    /// <summary>
    /// This host's share of the volume's current view, re-sealed for <paramref name="recipient"/> (a new primary taking
    /// over). The writer holds no share but the secret: it releases the share its own position in the replica set has
    /// in the split (a writer whose log device failed hands over to a replica; the secret is in the key file).
    /// </summary>
    public SealedShare ReleaseShare(Id160 volume, ShareHolder recipient)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(recipient);
        var vol = _store.Volume(volume);
        Id160 view;
        lock (vol.IndexLock) view = vol.View;
        SecretShare share;
        if (_keys.GetShare(volume) is { } held)
        {
            if (held.View != view)
                throw new CloudFsException($"this host's share of volume {volume} is for view {held.View}, not for the current view {view}");
            share = held.Share;
        }
        else share = WriterShare(vol, view) ?? throw new CloudFsException($"this host holds no share of volume {volume}");
        using var key = HostKey.ImportPublic(recipient.PublicKey ?? [], out var error)
                        ?? throw new CloudFsException($"host {recipient.Host}: its public key is unusable ({error})");
        var plain = share.Encode();
        try { return new SealedShare(volume, recipient.Host, view, HostKey.Seal(key, plain, ShareContext(volume, recipient.Host, view))); }
        finally { CryptographicOperations.ZeroMemory(plain); }
    }

    /// <summary>The writer's own share of <paramref name="view"/>, from the same split <see cref="SealShares"/> makes; null when
    /// this host is not the writer of that view or not in the replica set.</summary>
    private SecretShare? WriterShare(VolumeState vol, Id160 view)
    {
        byte[] secret;
        using (vol.LockChain())
        {
            if (vol.Secret is null || vol.SecretView != view) return null;
            secret = vol.Secret;
        }
        Id160[] set;
        lock (vol.IndexLock) set = vol.Replicas;
        var at = Array.IndexOf(set, HostId);
        if (at < 0 || set.Length > 255) return null;
        var n = set.Length;
        var k = n / 2 + 1;
        var ys = Shamir.Split(secret, n, k, view.ToArray());
        try { return new SecretShare((byte)(at + 1), (byte)k, (byte)n, (byte[])ys[at].Clone()); }
        finally
        {
            foreach (var y in ys) CryptographicOperations.ZeroMemory(y);
        }
    }

    /// <summary>
    /// Failover: recovers the current view's secret from <paramref name="shares"/> (sealed for this host) and this
    /// host's own share, checks it regenerates the local head, then appends a durable view-change entry under a new
    /// secret naming <paramref name="replicas"/> (this host first). The volume is writable here on return.
    /// Not enough good shares: <see cref="CloudFsException"/>, nothing appended. A host that is already the writer
    /// needs no shares (a view change that only changes the replica set). While the chain is claimed here, only its
    /// owner <paramref name="by"/> may (<see cref="ChainClaimedException"/>).
    /// </summary>
    public async Task<VolumeInfo> TakeOverAsync(Id160 volume, IReadOnlyList<SealedShare> shares, IReadOnlyList<Id160> replicas, CancellationToken ct = default,
        ChainClaim? by = null)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(shares);
        ArgumentNullException.ThrowIfNull(replicas);
        var vol = _store.Volume(volume);
        if (replicas.Count == 0 || replicas.Count > CreatePayload.MaxReplicas)
            throw new CloudFsException($"volume {volume}: a replica set has 1..{CreatePayload.MaxReplicas} hosts, not {replicas.Count}");
        if (replicas[0] != HostId) throw new CloudFsException($"volume {volume}: the new replica set must name this host {HostId} first (the primary)");
        if (replicas.Distinct().Count() != replicas.Count) throw new CloudFsException($"volume {volume}: a host appears twice in the new replica set");
        ct.ThrowIfCancellationRequested();
        // Everything queued before (applied entries above all) must be in the head the secret is checked against.
        await _store.FlushAsync(ct).ConfigureAwait(false);

        byte[]? oldSecret;
        Id160 oldSecretView;
        byte[] next;
        EntryItem item;
        using (var chain = vol.LockChain())
        {
            if (ClaimRefusal(chain, by) is { } claimed) throw claimed;
            long lsn;
            Id160 version, parent, digest, view;
            lock (vol.IndexLock)
            {
                (lsn, version, parent, digest, view) = (vol.Lsn, vol.Version, vol.HeadParent, vol.HeadDigest, vol.View);
            }
            if (vol.PendingLsn != lsn)
                throw new CloudFsException($"volume {volume}: entries are still being appended (lsn {vol.PendingLsn} queued, {lsn} committed); take over once they are in");
            oldSecret = vol.Secret;
            oldSecretView = vol.SecretView;
            var secret = oldSecret is not null && Regenerates(oldSecret, parent, digest, version)
                ? oldSecret
                : RecoverSecret(vol, shares, view, parent, digest, version);
            var parentId = VersionChain.NextId(secret, parent, digest);

            Span<byte> p = stackalloc byte[EntryHeader.BitmapBytes];
            var n = new ViewChangePayload(vol.PendingViewNumber + 1, replicas.ToArray()).Encode(p);
            var buf = EntryCodec.BuildMetadata(EntryKind.ViewChange, volume, 0, p[..n], LogStore.Now);
            next = new byte[VersionChain.SecretSize];
            RandomNumberGenerator.Fill(next);
            var id = VersionChain.NextId(next, parentId, new Id160(buf.Span[EntryHeader.OffDigest..]));
            var newVersion = VersionChain.PublicOf(id);
            EntryCodec.SetChain(buf.Span, volume, lsn + 1, parentId, newVersion);
            // The new secret is durable in the key file before the view-change entry can be acknowledged. (A writer
            // that crashes between the two has replaced its own secret by s' with the entry missing: at the next
            // open s' does not regenerate the head, so it takes over again with a majority of shares.)
            try { _keys.Add(volume, next); }
            catch { buf.Dispose(); throw; }
            vol.Secret = next;
            vol.SecretView = newVersion;
            if (!EntryHeader.TryParse(buf.Span, out var h, out var perr)) throw new InvalidOperationException($"a built view-change entry failed to parse: {perr}");
            // Through the same door as every other chained entry (its number is the next view by construction).
            if (AdmitChainedLocked(chain, buf, h, id, durable: true, out var queued) is { } refused)
            {
                buf.Dispose();
                vol.Secret = oldSecret;
                vol.SecretView = oldSecretView;
                if (oldSecret is not null) _keys.Add(volume, oldSecret);
                else _keys.Remove(volume);
                throw new CloudFsException(refused);
            }
            item = queued!;
        }
        try { await item.Done.Task.ConfigureAwait(false); }
        catch
        {
            // The entry never made it: this host is back to what it was (the writer with the old secret, or not the writer).
            using (vol.LockChain())
                if (ReferenceEquals(vol.Secret, next)) { vol.Secret = oldSecret; vol.SecretView = oldSecretView; }
            if (oldSecret is not null) _keys.Add(volume, oldSecret);
            else _keys.Remove(volume);
            throw;
        }
        _options.Log?.Invoke($"volume {volume}: took over as primary, view {item.Version} at lsn {item.Lsn}");
        return LogStore.Info(vol);
    }

    /// <summary>Opens the given shares and this host's own, and finds a threshold subset whose secret regenerates the head.</summary>
    private byte[] RecoverSecret(VolumeState vol, IReadOnlyList<SealedShare> shares, Id160 view, Id160 parent, Id160 digest, Id160 version)
    {
        var candidates = new List<SecretShare>();
        var refused = new List<string>();
        if (_keys.GetShare(vol.BaseId) is { } own)
        {
            if (own.View == view) candidates.Add(own.Share);
            else refused.Add($"this host's own share is for view {own.View}");
        }
        foreach (var s in shares)
        {
            if (s is null) continue;
            if (s.Volume != vol.BaseId) { refused.Add($"a share is for volume {s.Volume}"); continue; }
            if (s.Host != HostId) { refused.Add($"a share is sealed for host {s.Host}"); continue; }
            if (s.View != view) { refused.Add($"a share is for view {s.View}"); continue; }
            if (OpenShare(s, out var error) is { } opened)
            {
                if (!candidates.Any(c => c.X == opened.X && c.Y.AsSpan().SequenceEqual(opened.Y))) candidates.Add(opened);
            }
            else refused.Add(error!);
        }
        var tries = 0;
        // Shares of one split agree on the threshold; try each threshold seen, with every subset of distinct x.
        foreach (var group in candidates.GroupBy(c => c.Threshold).OrderBy(g => g.Key))
        {
            var list = group.ToList();
            var k = group.Key;
            if (list.Count < k) continue;
            foreach (var subset in Subsets(list.Count, k))
            {
                if (++tries > MaxShareCombinations) break;
                var picked = subset.Select(i => list[i]).ToList();
                if (picked.Select(c => c.X).Distinct().Count() != k) continue;
                var secret = Shamir.Combine(picked.Select(c => (c.X, c.Y)).ToList());
                if (Regenerates(secret, parent, digest, version)) return secret;
                CryptographicOperations.ZeroMemory(secret);
            }
        }
        var needed = candidates.Count == 0 ? "a majority of the replica set" : $"{candidates.Min(c => c.Threshold)}";
        var why = refused.Count == 0 ? "" : $" (refused: {string.Join("; ", refused.Distinct())})";
        throw new CloudFsException(
            $"volume {vol.BaseId}: the {candidates.Count} usable share(s) of view {view} do not recover a secret that regenerates the head {version}; {needed} good shares are needed{why}");
    }

    /// <summary>Every k-subset of 0..n-1, as index arrays, in lexicographic order.</summary>
    private static IEnumerable<int[]> Subsets(int n, int k)
    {
        var idx = Enumerable.Range(0, k).ToArray();
        while (true)
        {
            yield return idx;
            var i = k - 1;
            while (i >= 0 && idx[i] == n - k + i) i--;
            if (i < 0) yield break;
            idx[i]++;
            for (var j = i + 1; j < k; j++) idx[j] = idx[j - 1] + 1;
        }
    }

    private SecretShare? OpenShare(SealedShare share, out string? error)
    {
        var plain = _keys.HostKey.Open(share.Payload ?? [], ShareContext(share.Volume, share.Host, share.View), out error);
        if (plain is null) return null;
        var opened = SecretShare.Decode(plain);
        CryptographicOperations.ZeroMemory(plain);
        if (opened is null) error = "the opened share is malformed";
        return opened;
    }

    /// <summary>The associated data of a sealed share: volume ‖ recipient host ‖ view, so a share cannot be moved between them.</summary>
    private static byte[] ShareContext(Id160 volume, Id160 host, Id160 view)
    {
        var b = new byte[3 * Id160.Size];
        volume.WriteTo(b);
        host.WriteTo(b.AsSpan(Id160.Size));
        view.WriteTo(b.AsSpan(2 * Id160.Size));
        return b;
    }

    private bool IsVersionOf(Id160 volume, Id160 version)
    {
        try { return _store.FindVersion(version).Volume == volume; }
        catch (UnknownVersionException) { return false; }
    }

    /// <summary>The writability test: the secret's next id from the head's parent and digest is the head's version.</summary>
    private static bool Regenerates(ReadOnlySpan<byte> secret, Id160 parent, Id160 digest, Id160 version) =>
        VersionChain.PublicOf(VersionChain.NextId(secret, parent, digest)) == version;

    /// <summary>The key-file secret of a volume whose creation entry is being applied, if it regenerates that entry.</summary>
    internal byte[]? CreatorSecret(EntryHeader creation, out Id160 clearId)
    {
        clearId = Id160.Zero;
        if (_keys.Get(creation.Volume) is not { } s || !Regenerates(s, creation.Parent, creation.Digest, creation.Version)) return null;
        clearId = VersionChain.NextId(s, creation.Parent, creation.Digest);
        return s;
    }

    /// <summary>At open: the host key exists, and a volume keeps its secret only if it regenerates the recovered head.</summary>
    internal void SettleKeys()
    {
        _ = _keys.HostKey;
        foreach (var v in _store.VolumeStates.Values)
        {
            if (v.Secret is not { } s) continue;
            if (Regenerates(s, v.HeadParent, v.HeadDigest, v.Version)) { v.SecretView = v.View; continue; }
            _options.Log?.Invoke($"volume {v.BaseId}: the key file's secret does not regenerate the head {v.Version}; this host is not its writer");
            v.Secret = null;
            v.PendingId = v.WriterId = Id160.Zero;
            ForgetSecret(v.BaseId);
        }
    }

    /// <summary>Under the volume's ChainLock (<paramref name="chain"/>), when another host's entry extends the chain (or
    /// the owner steps down for one): this host is no longer the writer.</summary>
    internal void StepDownLocked(HeldChain chain, string why = "another host extends its chain")
    {
        var vol = chain.Volume;
        if (vol.Secret is null) return;
        vol.Secret = null;
        _options.Log?.Invoke($"volume {vol.BaseId}: {why}; this host is no longer its writer");
        ForgetSecret(vol.BaseId);
    }

    /// <summary>
    /// Drops a secret that no longer regenerates the head from the key file. A failure to rewrite the file is only
    /// logged: the secret is already out of memory, and at the next open it fails the regeneration test again.
    /// </summary>
    private void ForgetSecret(Id160 volume)
    {
        try { _keys.Remove(volume); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CloudFsException)
        {
            _options.Log?.Invoke($"volume {volume}: could not drop its stale secret from the key file: {e.Message}");
        }
    }

    /// <summary>The rules a view-change entry's payload obeys wherever it comes from (null for other kinds).</summary>
    internal static string? CheckViewChange(ReadOnlySpan<byte> entry, EntryHeader h) =>
        h.Kind != EntryKind.ViewChange || ViewChangePayload.Decode(entry.Slice(EntryHeader.OffBitmap, h.PayloadLength)) is not null
            ? null
            : $"volume {h.Volume}: the view-change entry at lsn {h.Lsn} has a malformed payload";

    /// <summary>
    /// Under the volume's ChainLock (<paramref name="chain"/>): the one door through which an entry other than the writer's own data and zeroes extends a
    /// volume's chain, at lsn PendingLsn + 1 (the caller checked lsn and parent): every entry of a stream or a feed
    /// (ApplyAsync: POST /log, cloudfs apply; ApplyLiveAsync: a replica following its primary, also after a full
    /// resync) and this host's own view change (TakeOverAsync). A view change must be well formed and the volume's
    /// next view: its number is the view number at the pending head + 1 (view changes queued before it count; after a
    /// fork split, the view at the rewind point). Otherwise the reason is returned and nothing changes: no step-down,
    /// the pending head stays, nothing is queued; the caller stops there, so nothing after it is admitted either.
    /// Else an entry of another host (<paramref name="clearId"/> zero) ends this host's writership, the pending head
    /// (and view) move to the entry and it is queued for the writer.
    /// </summary>
    internal string? AdmitChainedLocked(HeldChain chain, EntryBuffer buf, EntryHeader h, Id160 clearId, bool durable, out EntryItem? item)
    {
        var vol = chain.Volume;
        item = null;
        if (LogStore.CheckLifecycle(buf.Span, h) is { } lifecycleError) return lifecycleError;
        long viewNumber = -1;
        if (h.Kind == EntryKind.ViewChange)
        {
            if (ViewChangePayload.Decode(buf.Span.Slice(EntryHeader.OffBitmap, h.PayloadLength)) is not { } p)
                return $"volume {h.Volume}: the view-change entry at lsn {h.Lsn} has a malformed payload";
            if (p.ViewNumber != vol.PendingViewNumber + 1)
                return $"volume {h.Volume}: the view change at lsn {h.Lsn} names view {p.ViewNumber}, but the next view is {vol.PendingViewNumber + 1}";
            viewNumber = p.ViewNumber;
        }
        // Another host extended this chain: whatever secret this host held no longer regenerates the head.
        if (clearId.IsZero) StepDownLocked(chain);
        vol.PendingLsn = h.Lsn;
        vol.PendingVersion = h.Version;
        vol.PendingId = clearId;
        if (viewNumber >= 0) vol.PendingViewNumber = viewNumber;
        item = new EntryItem(buf, vol, h.Kind, h.Lsn, h.Version, vol.Epoch, durable) { ClearId = clearId, ViewNumber = viewNumber };
        _store.Appender.Enqueue(item);
        return null;
    }

    /// <summary>Under IndexLock, for a committed view-change entry: the new replica set and view.</summary>
    internal static void ApplyView(VolumeState v, ReadOnlySpan<byte> meta, EntryHeader h)
    {
        var p = ViewChangePayload.Decode(meta.Slice(EntryHeader.OffBitmap, h.PayloadLength))
                ?? throw new InvalidOperationException($"a verified view-change entry of volume {h.Volume} has a malformed payload");
        v.Replicas = p.Replicas;
        v.ViewNumber = p.ViewNumber;
        v.View = h.Version;
    }

    /// <summary>
    /// Makes the caller the one owner of <paramref name="volume"/>'s chain on this host: from now on the chain changes
    /// only through the returned claim until it is released. Only the volume's writer may claim it
    /// (<see cref="NotPrimaryException"/>); a newer claim replaces an older one, which then refuses its appends.
    /// </summary>
    public ChainClaim ClaimChain(Id160 volume)
    {
        _store.ThrowIfDisposed();
        var vol = _store.Volume(volume);
        using (vol.LockChain())
        {
            if (vol.Secret is null) throw new NotPrimaryException(volume);
            var claim = new ChainClaim(_store, vol);
            Volatile.Write(ref vol.Claim, claim);
            return claim;
        }
    }

    internal void ReleaseClaim(ChainClaim claim)
    {
        var vol = claim.State;
        using (vol.LockChain())
            if (ReferenceEquals(vol.Claim, claim)) Volatile.Write(ref vol.Claim, null);
    }

    /// <summary>
    /// The owner's step-down (a stale primary that placement tells to follow another host): once everything it queued is
    /// in the log, this host stops being the volume's writer (its secret leaves memory and the key file) and the claim
    /// ends; the other host's entries then apply here. Only through the claim (<see cref="ChainClaimedException"/>).
    /// </summary>
    public async Task<VolumeInfo> StepDownAsync(Id160 volume, ChainClaim by, CancellationToken ct = default)
    {
        _store.ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(by);
        var vol = _store.Volume(volume);
        using (var chain = vol.LockChain())
            if (ClaimRefusal(chain, by) is { } claimed) throw claimed;
        await _store.FlushAsync(ct).ConfigureAwait(false);
        using (var chain = vol.LockChain())
        {
            if (ClaimRefusal(chain, by) is { } claimed) throw claimed;
            StepDownLocked(chain, "its writer stepped down (another host is the primary)");
            Volatile.Write(ref vol.Claim, null);
        }
        return LogStore.Info(vol);
    }

    /// <summary>
    /// Under the volume's ChainLock (<paramref name="chain"/>): null when <paramref name="by"/> may change its chain (it
    /// is the volume's claim, or nobody claims it and <paramref name="by"/> is null); otherwise why not.
    /// </summary>
    internal ChainClaimedException? ClaimRefusal(HeldChain chain, ChainClaim? by)
    {
        var vol = chain.Volume;
        var held = vol.Claim;
        if (ReferenceEquals(held, by)) return null;
        if (held is null || by is not null)
            return new ChainClaimedException(vol.BaseId, $"volume {vol.BaseId}: this writer's claim on its chain was released or replaced; it no longer writes the volume");
        return new ChainClaimedException(vol.BaseId,
            $"volume {vol.BaseId} is written on this host ({HostId}, its primary) by its volume writer; its chain changes only through that writer, not from a stream, feed or resync");
    }
}
