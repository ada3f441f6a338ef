// Live stream apply (a replica following its primary): a reader task parses and verifies entries while this side
// admits them; each entry's write is reported as soon as it is in the log (what a sync write waits for), and whenever
// the source has nothing ready, or every ~4 MiB / 256 entries, one flush makes everything admitted so far durable and
// the durable head is reported (what a flush or FUA write waits for).
using System.Threading.Channels;
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Log;

namespace CloudFs.BlockDevice;

public sealed partial class LogStore
{
    private const int LiveFlushEntries = 256;
    private const long LiveFlushBytes = 4L << 20;
    /// <summary>Verified entries waiting for admission: the reader runs ahead of a flush by at most this many.</summary>
    private const int LiveReadAhead = 32;
    /// <summary>Flushes admitted but not yet durable before admission waits (bounds what a slow device queues up).</summary>
    private const int LiveFlushesInFlight = 4;

    /// <summary>One item from the reader: a verified entry, or why the stream stops (Buffer null).</summary>
    private readonly record struct StreamedEntry(EntryBuffer? Buffer, EntryHeader Header, string? Error);

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
        var channel = Channel.CreateBounded<StreamedEntry>(new BoundedChannelOptions(LiveReadAhead) { SingleReader = true, SingleWriter = true });
        var stopReading = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var reader = Task.Run(() => ReadVerifiedEntriesAsync(source, channel.Writer, stopReading.Token), CancellationToken.None);

        long applied = 0, index = 0, batchBytes = 0;
        // The last lsn admitted, the last lsn a flush point covered, and when the oldest unflushed entry was admitted.
        long admittedLsn = 0, flushedLsn = 0, dirtySince = 0;
        Id160? volume = null, head = null;
        string? error = null;
        var fork = false;
        var cancelled = false;
        var dirty = false;
        var batch = new List<Task<AppendResult>>();
        var heads = new List<ApplyProgress>();
        var reported = new Dictionary<Id160, long>();
        var inFlight = new Queue<Task>();
        var last = Task.CompletedTask;

        void Report(ApplyProgress p)
        {
            if (reported.TryGetValue(p.Volume, out var lsn) && lsn >= p.Lsn) return;
            reported[p.Volume] = p.Lsn;
            // The caller's failure must not undo or stop a durable apply.
            try { onDurable(p); }
            catch (Exception ex) { _options.Log?.Invoke($"an ApplyLiveAsync progress handler failed: {ex.Message}"); }
        }

        void ReportWritten(ApplyProgress p)
        {
            try { onWritten!(p); }
            catch (Exception ex) { _options.Log?.Invoke($"an ApplyLiveAsync progress handler failed: {ex.Message}"); }
        }

        async Task ReportWhenDurableAsync(Task previous, Task<AppendResult>[] entries, FlushItem flush, ApplyProgress[] durable)
        {
            // Reports stay in order, and the first failed entry stops every later one.
            await previous.ConfigureAwait(false);
            await Task.WhenAll(entries).ConfigureAwait(false);
            await flush.Done.Task.ConfigureAwait(false);
            foreach (var p in durable) Report(p);
        }

        void FlushPoint()
        {
            if (!dirty) return;
            flushedLsn = admittedLsn;
            var flush = new FlushItem();
            _appender.Enqueue(flush);
            last = ReportWhenDurableAsync(last, batch.ToArray(), flush, heads.ToArray());
            inFlight.Enqueue(last);
            batch.Clear();
            heads.Clear();
            batchBytes = 0;
            dirty = false;
            while (inFlight.TryPeek(out var done) && done.IsCompleted) _ = inFlight.Dequeue();
        }

        // A device slower than the source: admission waits for the oldest flush instead of queueing without bound.
        Task TooManyFlushes() => inFlight.Count <= LiveFlushesInFlight
            ? Task.CompletedTask
            : inFlight.Dequeue().ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        void NoteHead(EntryHeader h)
        {
            if (!dirty) dirtySince = Environment.TickCount64;
            admittedLsn = h.Lsn;
            var p = new ApplyProgress(h.Volume, h.Lsn, h.Version);
            var i = heads.FindIndex(x => x.Volume == h.Volume);
            if (i < 0) heads.Add(p);
            else heads[i] = p;
            dirty = true;
        }

        // Without a pacing policy every pause of the source is a flush point; with one, only a requested or overdue one.
        long FlushDueIn()
        {
            if (flushes is null || flushes.Wanted > flushedLsn) return 0;
            return Math.Max(0, (long)flushes.MaxDelay.TotalMilliseconds - (Environment.TickCount64 - dirtySince));
        }

        Task<bool>? waiting = null;
        try
        {
            while (!last.IsFaulted)
            {
                if (!channel.Reader.TryRead(out var next))
                {
                    // The source has nothing ready: make what was admitted durable now (when due), not when more arrives.
                    // While a flush is in flight, what arrives meanwhile waits for the next one (group commit: one
                    // fdatasync for all of it instead of one per entry).
                    var dueIn = dirty ? FlushDueIn() : long.MaxValue;
                    if (last.IsCompleted && dueIn == 0) { FlushPoint(); dueIn = long.MaxValue; }
                    waiting ??= channel.Reader.WaitToReadAsync(ct).AsTask();
                    if (dirty && !last.IsCompleted) await Task.WhenAny(waiting, last).ConfigureAwait(false);
                    else if (dirty && flushes is not null)
                        await Task.WhenAny(waiting, flushes.NextRequest(flushedLsn), Task.Delay(TimeSpan.FromMilliseconds(Math.Max(1, dueIn)), ct)).ConfigureAwait(false);
                    else if (dirty) await Task.WhenAny(waiting, last).ConfigureAwait(false);
                    else await waiting.ConfigureAwait(false);
                    if (!waiting.IsCompleted) continue;
                    var more = await waiting.ConfigureAwait(false);
                    waiting = null;
                    if (!more) break;
                    continue;
                }
                if (next.Error is not null) { error = next.Error; break; }
                var h = next.Header;
                EntryItem? item;
                string? reason;
                bool isFork, skip;
                try { (item, reason, isFork, skip) = AdmitApplied(next.Buffer!, h); }
                catch (CloudFsException ex) { (item, reason, isFork, skip) = (null, ex.Message, false, false); }
                if (reason is not null)
                {
                    next.Buffer!.Dispose();
                    error = $"entry {index} (lsn {h.Lsn}): {reason}";
                    fork = isFork;
                    break;
                }
                index++;
                volume = h.Volume;
                head = h.Version;
                NoteHead(h);
                if (skip)
                {
                    next.Buffer!.Dispose();
                    if (onWritten is not null) ReportWritten(new ApplyProgress(h.Volume, h.Lsn, h.Version));
                    continue;
                }
                if (onWritten is not null)
                {
                    var written = new ApplyProgress(h.Volume, h.Lsn, h.Version);
                    _ = item!.Done.Task.ContinueWith((t, p) => { if (t.IsCompletedSuccessfully) ReportWritten((ApplyProgress)p!); },
                        written, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
                batch.Add(item!.Done.Task);
                applied++;
                batchBytes += h.TotalBytes;
                // A requested lsn is flushed as soon as it is admitted, even while the source keeps streaming.
                var requested = flushes is not null && flushes.Wanted > flushedLsn && flushes.Wanted <= admittedLsn && last.IsCompleted;
                if (!requested && batch.Count < LiveFlushEntries && batchBytes < LiveFlushBytes) continue;
                FlushPoint();
                await TooManyFlushes().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { cancelled = true; }
        finally
        {
            // Not awaited: a source whose read ignores cancellation would hold this up until the caller disposes it.
            await stopReading.CancelAsync().ConfigureAwait(false);
            _ = reader.ContinueWith(r =>
            {
                if (r.Exception is { } ex) _options.Log?.Invoke($"a live apply's stream reader failed: {ex.GetBaseException().Message}");
                while (channel.Reader.TryRead(out var left)) left.Buffer?.Dispose();
                stopReading.Dispose();
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        // Everything applied so far becomes durable and is reported, even when the stream stopped at a bad entry.
        FlushPoint();
        try { await last.ConfigureAwait(false); }
        catch (CloudFsException ex) { error ??= ex.Message; }
        if (cancelled) throw new OperationCanceledException(ct);
        return new ApplyResult(applied, volume, head, error, fork);
    }

    /// <summary>
    /// The reader side of a live apply: whole entries, bounds-checked and verified (CRCs, digest) off the admitting
    /// thread. Ends the channel at the end of the source, after an error item, or when stopped.
    /// </summary>
    private static async Task ReadVerifiedEntriesAsync(Stream source, ChannelWriter<StreamedEntry> output, CancellationToken ct)
    {
        var header = new byte[EntryHeader.Size];
        long index = 0;
        try
        {
            while (true)
            {
                var (buf, h, error) = await ReadStreamedEntryAsync(source, header, index, ct).ConfigureAwait(false);
                if (buf is null && error is null) break;
                if (buf is null) { await output.WriteAsync(new StreamedEntry(null, default, error), ct).ConfigureAwait(false); break; }
                try { await output.WriteAsync(new StreamedEntry(buf, h, null), ct).ConfigureAwait(false); }
                catch { buf.Dispose(); throw; }
                index++;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or NotSupportedException)
        {
            // The source broke (a dropped connection): the stream ends here, like a truncated one.
            try { await output.WriteAsync(new StreamedEntry(null, default, $"entry {index}: the stream failed: {ex.Message}"), ct).ConfigureAwait(false); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        }
        finally { output.TryComplete(); }
    }

    /// <summary>The next whole, verified entry of a stream; (null, _, null) at its clean end; (null, _, why) when it is bad.</summary>
    private static async Task<(EntryBuffer? Buffer, EntryHeader Header, string? Error)> ReadStreamedEntryAsync(
        Stream source, byte[] header, long index, CancellationToken ct)
    {
        var got = await ReadFullAsync(source, header, ct).ConfigureAwait(false);
        if (got == 0) return (null, default, null);
        if (got < header.Length) return (null, default, $"entry {index}: the stream ends inside an entry header");
        if (!EntryHeader.TryParse(header, out var h, out var perr)) return (null, default, $"entry {index}: {perr}");
        if (h.Kind is EntryKind.Relocation or EntryKind.Rewind or EntryKind.ResyncData or EntryKind.ResyncCommit or EntryKind.Purge)
            return (null, default, $"entry {index}: {h.Kind.ToString().ToLowerInvariant()} entries are never streamed");
        var buf = EntryCodec.Allocate(h.StoredCount);
        try
        {
            header.CopyTo(buf.Span);
            var rest = buf.Span.Length - header.Length;
            if (await ReadFullAsync(source, buf.Array.AsMemory(header.Length, rest), ct).ConfigureAwait(false) < rest)
            { buf.Dispose(); return (null, default, $"entry {index}: the stream ends inside the entry"); }
            var bad = EntryCodec.Verify(buf.Span, out _);
            if (bad is not null) { buf.Dispose(); return (null, default, $"entry {index} (lsn {h.Lsn}): {bad}"); }
            return (buf, h, null);
        }
        catch { buf.Dispose(); throw; }
    }
}
