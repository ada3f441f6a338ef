// The two shapes of `cloudfs ls`: nine white-space separated fields per line, or a JSON array with the same nine fields.
using System.Globalization;
using System.Text.Json;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class VolumeListFormat
{
    public static string Mode(VolumeMode mode) => mode == VolumeMode.Sync ? "sync" : "async";

    public static string Line(VolumeSummary v) => string.Join(' ',
        v.Id,
        v.Size.ToString(CultureInfo.InvariantCulture),
        Mode(v.Mode),
        string.IsNullOrEmpty(v.Primary) ? "-" : v.Primary,
        v.Replicas.Count == 0 ? "-" : string.Join(',', v.Replicas),
        v.Version,
        string.IsNullOrEmpty(v.Name) ? "-" : v.Name,
        v.Health,
        string.IsNullOrEmpty(v.Parent) ? "-" : v.Parent);

    /// <summary>`ls --json`: the objects exactly as the node's management API writes them (ManagementJson).</summary>
    public static string Json(IReadOnlyList<VolumeSummary> volumes) => JsonSerializer.Serialize(volumes, ManagementJson.Options);
}
