// Per-volume health and replica lag in /metrics, read from the cluster's view at each scrape (the volumes as `ls`
// shows them, page by page) and written straight after the registry's series: every node reports every volume, so one
// node's scrape is enough and a volume whose primary is lost is still there (aggregate several nodes' with max by
// (volume)). Nothing is kept between scrapes: a volume that is gone has no series, and memory does not grow with the
// volume count (as registry children, the nine series of a volume held ~4.7 KiB each: 470 MiB at 100,000 volumes).
// When the cluster does not answer within ScrapeTimeout, the scrape carries no per-volume series (Prometheus marks them
// stale) rather than a part of them.
using System.Globalization;
using System.Text;
using CloudFs.Actors.Management;

namespace CloudFs.Host.Metrics;

internal sealed class VolumeHealthSeries(Func<CancellationToken, IAsyncEnumerable<VolumeSummary>> volumes)
{
    /// <summary>A scrape waits this long for the cluster's answer at most.</summary>
    public static readonly TimeSpan ScrapeTimeout = TimeSpan.FromSeconds(5);

    private const int ChunkChars = 32 * 1024;

    /// <summary>One volume's figures, without the rest of its summary (names, versions), while a scrape writes them.</summary>
    private readonly record struct Row(string Id, string Health, int Current, int Replicas, int? Resync, IReadOnlyList<ReplicaLag> Lag);

    /// <summary>Writes every volume's series, family by family, to <paramref name="body"/> in the Prometheus text format.</summary>
    public async Task WriteAsync(Stream body, CancellationToken ct)
    {
        var rows = await ReadAsync(ct);
        if (rows is null) return;
        var text = new StringBuilder(ChunkChars + 1024);
        async Task Spill(bool always)
        {
            if (!always && text.Length < ChunkChars) return;
            await body.WriteAsync(Encoding.UTF8.GetBytes(text.ToString()), ct);
            text.Clear();
        }
        async Task Family(string name, string help, Action<Row> lines)
        {
            text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            text.Append("# TYPE ").Append(name).Append(" gauge\n");
            foreach (var row in rows)
            {
                lines(row);
                await Spill(always: false);
            }
        }
        void Line(string name, string volume, string? labelName, string? labelValue, long value)
        {
            text.Append(name).Append("{volume=\"").Append(volume);
            if (labelName is not null) text.Append("\",").Append(labelName).Append("=\"").Append(labelValue);
            text.Append("\"} ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        await Family("cloudfs_volume_health",
            "1 for the volume's health word (healthy, degraded, resyncing, outdated, damaged), 0 for the others.",
            r => { foreach (var word in VolumeHealth.Words) Line("cloudfs_volume_health", r.Id, "health", word, word == r.Health ? 1 : 0); });
        await Family("cloudfs_volume_current_replicas", "Replicas of the volume at the primary's head (the primary counts).",
            r => Line("cloudfs_volume_current_replicas", r.Id, null, null, r.Current));
        await Family("cloudfs_volume_replicas", "Hosts in the volume's replica set.",
            r => Line("cloudfs_volume_replicas", r.Id, null, null, r.Replicas));
        await Family("cloudfs_volume_resync_percent", "How far the slowest resync of the volume got, while one runs (no series otherwise).",
            r => { if (r.Resync is { } percent) Line("cloudfs_volume_resync_percent", r.Id, null, null, percent); });
        await Family("cloudfs_replica_lag_entries", "Log entries the replica is behind its volume's primary.",
            r => { foreach (var l in r.Lag) if (l.LagEntries is { } entries) Line("cloudfs_replica_lag_entries", r.Id, "host", l.Host, entries); });
        await Family("cloudfs_replica_lag_bytes", "Stream bytes of the entries the replica is behind its volume's primary.",
            r => { foreach (var l in r.Lag) if (l is { LagEntries: not null, LagBytes: { } bytes }) Line("cloudfs_replica_lag_bytes", r.Id, "host", l.Host, bytes); });
        await Spill(always: true);
    }

    /// <summary>Every volume's row, or null when the cluster did not answer (in time).</summary>
    private async Task<List<Row>?> ReadAsync(CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(ScrapeTimeout);
        var rows = new List<Row>();
        try
        {
            await foreach (var v in volumes(limit.Token).WithCancellation(limit.Token))
                rows.Add(new Row(v.Id, v.Health, v.CurrentReplicas, v.Replicas.Count, v.ResyncPercent, v.Lag ?? []));
            return rows;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return null;
        }
    }
}
