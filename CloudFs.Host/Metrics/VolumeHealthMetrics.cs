// Per-volume health and replica lag in /metrics, read from the cluster's view at each scrape (the volumes as `ls`
// shows them, page by page): every node reports every volume, so one node's scrape is enough and a volume whose primary
// is lost is still there (aggregate several nodes' with max by (volume)). Series of volumes or replicas that are gone
// are removed, not left at their last value.
using CloudFs.Actors.Management;
using Prometheus;

namespace CloudFs.Host.Metrics;

internal sealed class VolumeHealthMetrics
{
    /// <summary>A scrape waits this long for the cluster's answer at most; the series keep their values otherwise.</summary>
    public static readonly TimeSpan ScrapeTimeout = TimeSpan.FromSeconds(5);

    private readonly Func<CancellationToken, IAsyncEnumerable<VolumeSummary>> _volumes;
    private readonly Gauge _health, _current, _replicas, _resync, _lagEntries, _lagBytes;
    private HashSet<string> _seenVolumes = new();
    private HashSet<(string Volume, string Host)> _seenReplicas = new();
    private readonly SemaphoreSlim _refreshing = new(1, 1);

    /// <param name="volumes">Every volume not in the trash, as `ls --json` lists them.</param>
    public VolumeHealthMetrics(CollectorRegistry registry, Func<CancellationToken, IAsyncEnumerable<VolumeSummary>> volumes)
    {
        _volumes = volumes;
        var f = Prometheus.Metrics.WithCustomRegistry(registry);
        _health = f.CreateGauge("cloudfs_volume_health",
            "1 for the volume's health word (healthy, degraded, resyncing, outdated, damaged), 0 for the others.", "volume", "health");
        _current = f.CreateGauge("cloudfs_volume_current_replicas", "Replicas of the volume at the primary's head (the primary counts).", "volume");
        _replicas = f.CreateGauge("cloudfs_volume_replicas", "Hosts in the volume's replica set.", "volume");
        _resync = f.CreateGauge("cloudfs_volume_resync_percent", "How far the slowest resync of the volume got, while one runs (no series otherwise).", "volume");
        _lagEntries = f.CreateGauge("cloudfs_replica_lag_entries", "Log entries the replica is behind its volume's primary.", "volume", "host");
        _lagBytes = f.CreateGauge("cloudfs_replica_lag_bytes", "Stream bytes of the entries the replica is behind its volume's primary.", "volume", "host");
        registry.AddBeforeCollectCallback(RefreshAsync);
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        // Scrapes that overlap share one refresh's values.
        if (!await _refreshing.WaitAsync(0, ct)) return;
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(ScrapeTimeout);
            var volumes = new HashSet<string>();
            var replicas = new HashSet<(string, string)>();
            await foreach (var v in _volumes(limit.Token).WithCancellation(limit.Token))
            {
                volumes.Add(v.Id);
                foreach (var word in VolumeHealth.Words) _health.WithLabels(v.Id, word).Set(word == v.Health ? 1 : 0);
                _current.WithLabels(v.Id).Set(v.CurrentReplicas);
                _replicas.WithLabels(v.Id).Set(v.Replicas.Count);
                if (v.ResyncPercent is { } percent) _resync.WithLabels(v.Id).Set(percent);
                else _resync.RemoveLabelled(v.Id);
                foreach (var r in v.Lag ?? [])
                {
                    if (r.LagEntries is not { } entries) continue;
                    replicas.Add((v.Id, r.Host));
                    _lagEntries.WithLabels(v.Id, r.Host).Set(entries);
                    if (r.LagBytes is { } bytes) _lagBytes.WithLabels(v.Id, r.Host).Set(bytes);
                    else _lagBytes.RemoveLabelled(v.Id, r.Host);
                }
            }
            foreach (var gone in _seenVolumes.Except(volumes))
            {
                foreach (var word in VolumeHealth.Words) _health.RemoveLabelled(gone, word);
                _current.RemoveLabelled(gone);
                _replicas.RemoveLabelled(gone);
                _resync.RemoveLabelled(gone);
            }
            foreach (var (volume, host) in _seenReplicas.Except(replicas))
            {
                _lagEntries.RemoveLabelled(volume, host);
                _lagBytes.RemoveLabelled(volume, host);
            }
            (_seenVolumes, _seenReplicas) = (volumes, replicas);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // The cluster did not answer (in time): the series keep their last values; the scrape still succeeds.
        }
        finally
        {
            _refreshing.Release();
        }
    }
}
