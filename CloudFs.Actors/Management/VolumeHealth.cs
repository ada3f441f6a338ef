// The health word of a volume in `cloudfs ls` (SPEC.md: healthy, degraded, resyncing, outdated, damaged), decided in
// one place from what its replica hosts report, so every reason a volume can be unwell is weighed against the others here.
using CloudFs.Actors.Replication;

namespace CloudFs.Actors.Management;

public static class VolumeHealth
{
    public const string Healthy = "healthy";
    public const string Degraded = "degraded";
    public const string Resyncing = "resyncing";
    public const string Outdated = "outdated";
    public const string Damaged = "damaged";

    /// <summary>
    /// Damaged when any replica host reports ranges of it that it cannot serve (failed checksums: `cloudfs scrub`
    /// repairs what another replica holds); else degraded when <paramref name="hostMissing"/> (a host of the replica
    /// set is away or its log device failed, or there is no primary); healthy otherwise.
    /// </summary>
    public static string Of(IEnumerable<VolumeReport> reports, bool hostMissing)
    {
        if (reports.Any(r => r.DamagedBytes > 0)) return Damaged;
        return hostMissing ? Degraded : Healthy;
    }
}
