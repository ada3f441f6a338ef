// Full resync over the cluster: a replica whose needed history the primary compacted away (a new replica from lsn 0,
// or one that fell behind) fetches the volume whole from the primary's host agent in pieces of at most 1 MiB, applies
// them to its log (LogStore.Resync.ApplyAsync: staged, installed atomically by the commit), then pulls entries after it.
using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Replication;

/// <summary>The primary no longer holds the lsn this replica must chain on from: only a full resync can help.</summary>
public sealed class ResyncNeededException(long lsn, string message) : CloudFsException(message)
{
    public ResyncNeededException(long lsn)
        : this(lsn, $"the primary no longer holds lsn {lsn} (compacted away); this replica needs a full resync") { }

    public long Lsn { get; } = lsn;
}

internal sealed class Resync(Id160 volume, LogStore store, FollowerSettings settings, ILoggingAdapter log)
{
    /// <summary>Largest piece on the wire: far below Akka's frame size, never one message per block.</summary>
    public const int MaxPieceBytes = 1 << 20;

    /// <summary>
    /// True when the entry after <paramref name="after"/> exists on the primary but it no longer holds it (compacted):
    /// pulling could never chain on from there.
    /// </summary>
    public static async Task<bool> IsNeededAsync(ActorSelection agent, Id160 volume, long after, TimeSpan timeout, CancellationToken ct)
    {
        var answer = await agent.Ask<VersionAnswer>(new GetVersionAt(volume.ToString(), after + 1), timeout, ct).ConfigureAwait(false);
        return answer.Version is null && after + 1 <= answer.HeadLsn;
    }

    /// <summary>
    /// Fetches and installs the volume whole; returns the lsn it was installed at (pulling goes on after it). With
    /// <paramref name="replaceAhead"/> (the copy held here was kept as a branch) a copy at or beyond the primary's head
    /// is replaced too. <paramref name="covered"/> hears, after each piece, how many bytes of the volume's address
    /// space the transfer has covered.
    /// </summary>
    public async Task<long> RunAsync(ActorSelection agent, bool replaceAhead, CancellationToken ct, Action<long>? covered = null)
    {
        // A copy at or beyond the primary's head cannot be replaced by one as of that head (the resync is refused), and
        // over compacted history its chain cannot be compared either: say so instead of fetching for nothing.
        if (!replaceAhead && store.GetVolume(volume) is { } local)
        {
            var head = (await agent.Ask<VersionAnswer>(new GetVersionAt(volume.ToString(), 0), settings.AskTimeout, ct).ConfigureAwait(false)).HeadLsn;
            if (local.Lsn >= head)
                throw new CloudFsException($"this host holds lsn {local.Lsn}, not behind the primary's head {head}, and the primary compacted the history needed to compare the chains; the replica cannot follow until an operator resolves it");
        }
        var clock = Stopwatch.StartNew();
        var transfer = Id160.Zero;
        long from = 0, bytes = 0, pieces = 0;
        try
        {
            while (true)
            {
                var reply = await agent.Ask<object>(new ReadResync(volume, transfer, from, Math.Min(settings.ChunkBytes, MaxPieceBytes), store.MaxBlocksPerEntry),
                    settings.AskTimeout, ct).ConfigureAwait(false);
                if (reply is ControlFailed f) throw new CloudFsException($"the primary refused the resync: {f.Reason}");
                if (reply is not ResyncPiece piece) throw new CloudFsException($"unexpected answer {reply.GetType().Name} to a resync request");
                if (!transfer.IsZero && piece.Transfer != transfer)
                    throw new CloudFsException($"the primary answered for resync transfer {piece.Transfer}, not {transfer}");
                if (transfer.IsZero)
                    log.Info("replica of volume {0}: the primary compacted the history this replica needs; full resync as of lsn {1}", volume, piece.Lsn);
                transfer = piece.Transfer;
                var progress = await store.Resync.ApplyAsync(piece.Data, replaceAhead, ct).ConfigureAwait(false);
                bytes += piece.Data.Length;
                pieces++;
                if (piece.Complete)
                {
                    if (!progress.Committed) throw new CloudFsException($"resync transfer {transfer}: the last piece did not commit the volume");
                    log.Info("replica of volume {0}: full resync from the primary: {1} bytes in {2} pieces, installed at lsn {3} in {4:0.00} s",
                        volume, bytes, pieces, progress.Lsn, clock.Elapsed.TotalSeconds);
                    return progress.Lsn;
                }
                from = piece.NextBlock;
                covered?.Invoke(from * LogStore.BlockSize);
            }
        }
        catch
        {
            // Whatever was staged is dead space; the copy held before (if any) stays as it was.
            if (!transfer.IsZero) store.Resync.Abort(transfer);
            throw;
        }
    }

    /// <summary>The primary's side (HostAgent): the next piece of a transfer, at most <see cref="MaxPieceBytes"/> with its commit.</summary>
    public static async Task<object> ServeAsync(LogStore store, ReadResync r)
    {
        // Room for the commit entry (1 KiB) on top of the pieces' entries.
        var max = Math.Clamp(r.MaxBytes, 64 << 10, MaxPieceBytes - 4096);
        var chunk = await store.Resync.ReadAsync(r.Volume, r.Transfer, r.FromBlock, max, Math.Max(16, r.MaxEntryBlocks)).ConfigureAwait(false);
        return new ResyncPiece(chunk.Transfer, chunk.Lsn, chunk.NextBlock, chunk.Complete, chunk.Data);
    }
}
