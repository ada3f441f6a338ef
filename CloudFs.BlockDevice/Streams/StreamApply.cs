// The one loop that applies a version stream to the log, for every caller: a whole stream (POST /log, `cloudfs apply`)
// and a replica's live feed (VolumeFollower). A reader task parses and verifies entries ahead of admission
// (StreamEntryReader); each entry is admitted to its chain in order; the first bad or refused entry stops the apply, and
// everything admitted before it stays applied and is made durable. The two differ only in when entries become durable:
// a whole stream once, at its end; a live feed whenever the source pauses, every ~4 MiB or 256 entries, or as
// LiveFlushes paces it, reporting each volume's durable head as it grows.
using System.Threading.Channels;
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Streams;

/// <param name="live">Flush at every pause of the source (or as <paramref name="flushes"/> paces it) and at every
/// batch, reporting durable heads; otherwise once, at the end.</param>
internal sealed class StreamApply(IStreamTarget target, bool import, bool live, Action<ApplyProgress>? onDurable,
    Action<ApplyProgress>? onWritten, LiveFlushes? flushes)
{
    /// <summary>Entries admitted between two batch points (a live apply flushes there; a whole one waits for the
    /// writes of the oldest batch once too many are in flight).</summary>
    private const int BatchEntries = 256;
    private const long BatchBytes = 4L << 20;
    /// <summary>Verified entries waiting for admission: the reader runs ahead by at most this many.</summary>
    private const int ReadAhead = 32;
    /// <summary>Batches admitted but not yet done before admission waits (bounds what a slow device queues up).</summary>
    private const int BatchesInFlight = 4;

    private long _index, _applied, _batchBytes;
    // The last lsn admitted, the last lsn a flush point covered, and when the oldest unflushed entry was admitted.
    private long _admittedLsn, _flushedLsn, _dirtySince;
    private Id160? _volume, _head;
    private string? _error;
    private bool _fork, _refused, _claimed, _dirty;
    private readonly List<Task<AppendResult>> _batch = [];
    private readonly List<ApplyProgress> _heads = [];
    private readonly Dictionary<Id160, long> _reported = new();
    private readonly Queue<Task> _inFlight = new();
    private Task _last = Task.CompletedTask;

    /// <summary>A stream applied as a whole: made durable once, at its end. Without <paramref name="import"/> a
    /// creation or branch entry of a volume the target does not hold stops it, refused.</summary>
    public static StreamApply Whole(IStreamTarget target, bool import) => new(target, import, live: false, null, null, null);

    /// <summary>A live feed (see <see cref="VersionStreams.ApplyLiveAsync(Stream, Action{ApplyProgress}, CancellationToken)"/>);
    /// it imports: a new replica's feed starts with the volume's creation entry.</summary>
    public static StreamApply Live(IStreamTarget target, Action<ApplyProgress> onDurable, Action<ApplyProgress>? onWritten, LiveFlushes? flushes) =>
        new(target, import: true, live: true, onDurable, onWritten, flushes);

    /// <summary>Runs once, until the source ends, a bad or refused entry, or <paramref name="ct"/> (then what was
    /// applied is still made durable, and <see cref="OperationCanceledException"/> is thrown).</summary>
    public async Task<ApplyResult> RunAsync(Stream source, CancellationToken ct)
    {
        var channel = Channel.CreateBounded<StreamedEntry>(new BoundedChannelOptions(ReadAhead) { SingleReader = true, SingleWriter = true });
        var stopReading = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var entries = new StreamEntryReader(source, import ? null : RefuseImport);
        var reader = Task.Run(() => ReadAheadAsync(entries, channel.Writer, stopReading.Token), CancellationToken.None);
        var cancelled = false;
        Task<bool>? waiting = null;
        try
        {
            while (!_last.IsFaulted)
            {
                if (!channel.Reader.TryRead(out var next))
                {
                    // The source has nothing ready: make what was admitted durable now (when due), not when more
                    // arrives. While a flush is in flight, what arrives meanwhile waits for the next one (group commit:
                    // one fdatasync for all of it instead of one per entry).
                    var dueIn = _dirty ? FlushDueIn() : long.MaxValue;
                    if (_last.IsCompleted && dueIn == 0) { BatchPoint(); dueIn = long.MaxValue; }
                    waiting ??= channel.Reader.WaitToReadAsync(ct).AsTask();
                    if (live && _dirty && !_last.IsCompleted) await Task.WhenAny(waiting, _last).ConfigureAwait(false);
                    else if (_dirty && dueIn != long.MaxValue)
                        await Task.WhenAny(waiting, flushes!.NextRequest(_flushedLsn), Task.Delay(TimeSpan.FromMilliseconds(Math.Max(1, dueIn)), ct)).ConfigureAwait(false);
                    else await waiting.ConfigureAwait(false);
                    if (!waiting.IsCompleted) continue;
                    var more = await waiting.ConfigureAwait(false);
                    waiting = null;
                    if (!more) break;
                    continue;
                }
                var admitted = Admit(next);
                if (admitted == Admitted.Stop) break;
                if (admitted == Admitted.Held || !BatchDue()) continue;
                BatchPoint();
                await TooManyBatches().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { cancelled = true; }
        finally
        {
            // Not awaited: a source whose read ignores cancellation would hold this up until the caller disposes it.
            await stopReading.CancelAsync().ConfigureAwait(false);
            _ = reader.ContinueWith(r =>
            {
                if (r.Exception is { } ex) target.Log($"a stream apply's reader failed: {ex.GetBaseException().Message}");
                while (channel.Reader.TryRead(out var left)) left.Buffer?.Dispose();
                stopReading.Dispose();
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        // Everything applied so far becomes durable and is reported, even when the stream stopped at a bad entry.
        BatchPoint(final: true);
        try { await _last.ConfigureAwait(false); }
        catch (CloudFsException ex) { _error ??= ex.Message; }
        if (cancelled) throw new OperationCanceledException(ct);
        return new ApplyResult(_applied, _volume, _head, _error, _fork, _refused) { IsClaimed = _claimed };
    }

    private enum Admitted { Stop, Held, Queued }

    /// <summary>Chain admission of the reader's next item; Stop when the apply ends at it (the item or the chain says why).</summary>
    private Admitted Admit(StreamedEntry next)
    {
        if (next.Error is not null)
        {
            _error = next.Error;
            _refused = next.IsRefused;
            return Admitted.Stop;
        }
        var h = next.Header;
        StreamAdmission admission;
        try { admission = target.Admit(next.Buffer!, h); }
        catch (CloudFsException ex) { admission = StreamAdmission.Refused(ex.Message); }
        if (admission.Error is not null)
        {
            next.Buffer!.Dispose();
            _error = $"entry {_index} (lsn {h.Lsn}): {admission.Error}";
            _fork = admission.IsFork;
            _claimed = admission.IsClaimed;
            return Admitted.Stop;
        }
        _index++;
        _volume = h.Volume;
        _head = h.Version;
        NoteHead(h);
        var written = new ApplyProgress(h.Volume, h.Lsn, h.Version);
        if (admission.Skip)
        {
            // Already held: written (and durable after the next flush) here too.
            next.Buffer!.Dispose();
            if (onWritten is not null) ReportWritten(written);
            return Admitted.Held;
        }
        var item = admission.Item!;
        if (onWritten is not null)
            _ = item.Done.Task.ContinueWith((t, p) => { if (t.IsCompletedSuccessfully) ReportWritten((ApplyProgress)p!); },
                written, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _batch.Add(item.Done.Task);
        _applied++;
        _batchBytes += h.TotalBytes;
        return Admitted.Queued;
    }

    private void NoteHead(EntryHeader h)
    {
        if (!_dirty) _dirtySince = Environment.TickCount64;
        _admittedLsn = h.Lsn;
        var p = new ApplyProgress(h.Volume, h.Lsn, h.Version);
        var i = _heads.FindIndex(x => x.Volume == h.Volume);
        if (i < 0) _heads.Add(p);
        else _heads[i] = p;
        _dirty = true;
    }

    /// <summary>After ~4 MiB or 256 entries; in a paced live apply also as soon as a requested lsn is admitted, even
    /// while the source keeps streaming.</summary>
    private bool BatchDue()
    {
        var requested = flushes is not null && flushes.Wanted > _flushedLsn && flushes.Wanted <= _admittedLsn && _last.IsCompleted;
        return requested || _batch.Count >= BatchEntries || _batchBytes >= BatchBytes;
    }

    /// <summary>How long a pause of the source waits before it flushes what was admitted: a live apply at once, or
    /// with pacing when asked or overdue; a whole stream never (it flushes at its end).</summary>
    private long FlushDueIn()
    {
        if (!live) return long.MaxValue;
        if (flushes is null || flushes.Wanted > _flushedLsn) return 0;
        return Math.Max(0, (long)flushes.MaxDelay.TotalMilliseconds - (Environment.TickCount64 - _dirtySince));
    }

    /// <summary>
    /// Closes the batch admitted so far. A live apply (and the final point of any) flushes it and reports its heads
    /// once durable; a whole stream's batch only joins the chain of completions (a failed write stops the apply).
    /// Completions stay in order.
    /// </summary>
    private void BatchPoint(bool final = false)
    {
        var flush = live || final;
        if (flush ? !_dirty : _batch.Count == 0) return;
        Task? flushed = null;
        ApplyProgress[] durable = [];
        if (flush)
        {
            _flushedLsn = _admittedLsn;
            flushed = target.FlushAsync();
            durable = [.. _heads];
            _heads.Clear();
            _dirty = false;
        }
        _last = CompleteAsync(_last, [.. _batch], flushed, durable);
        _inFlight.Enqueue(_last);
        _batch.Clear();
        _batchBytes = 0;
        while (_inFlight.TryPeek(out var done) && done.IsCompleted) _ = _inFlight.Dequeue();
    }

    private async Task CompleteAsync(Task previous, Task<AppendResult>[] entries, Task? flush, ApplyProgress[] durable)
    {
        // Reports stay in order, and the first failed entry stops every later one.
        await previous.ConfigureAwait(false);
        await Task.WhenAll(entries).ConfigureAwait(false);
        if (flush is null) return;
        await flush.ConfigureAwait(false);
        foreach (var p in durable) ReportDurable(p);
    }

    /// <summary>A device slower than the source: admission waits for the oldest batch instead of queueing without bound.</summary>
    private Task TooManyBatches() => _inFlight.Count <= BatchesInFlight
        ? Task.CompletedTask
        : _inFlight.Dequeue().ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private void ReportDurable(ApplyProgress p)
    {
        if (onDurable is null) return;
        if (_reported.TryGetValue(p.Volume, out var lsn) && lsn >= p.Lsn) return;
        _reported[p.Volume] = p.Lsn;
        // The caller's failure must not undo or stop a durable apply.
        try { onDurable(p); }
        catch (Exception ex) { target.Log($"an ApplyLiveAsync progress handler failed: {ex.Message}"); }
    }

    private void ReportWritten(ApplyProgress p)
    {
        try { onWritten!(p); }
        catch (Exception ex) { target.Log($"an ApplyLiveAsync progress handler failed: {ex.Message}"); }
    }

    /// <summary>Taking in a volume from elsewhere is an import, which the caller asks for: without it a creation or
    /// branch entry of a volume not held here is refused before any of it is read.</summary>
    private string? RefuseImport(EntryHeader h) =>
        h.Kind is EntryKind.Create or EntryKind.Branch && !target.Holds(h.Volume)
            ? $"volume {h.Volume} is not held by this host, and a stream that creates it here is an import: ask for one (POST /log?import=1, cloudfs apply --import)"
            : null;

    /// <summary>
    /// The reader side: whole, verified entries off the admitting thread, into the channel. Ends the channel at the end
    /// of the source, after an error item, or when stopped; a source that fails ends it like a truncated stream.
    /// </summary>
    private static async Task ReadAheadAsync(StreamEntryReader entries, ChannelWriter<StreamedEntry> output, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                var next = await entries.ReadAsync(ct).ConfigureAwait(false);
                if (next.IsEnd) break;
                try { await output.WriteAsync(next, ct).ConfigureAwait(false); }
                catch { next.Buffer?.Dispose(); throw; }
                if (next.Error is not null) break;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or NotSupportedException)
        {
            // The source broke (a dropped connection): the stream ends here, like a truncated one.
            try { await output.WriteAsync(StreamedEntry.Bad($"entry {entries.Index}: the stream failed: {ex.Message}"), ct).ConfigureAwait(false); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        }
        finally { output.TryComplete(); }
    }
}
