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

    public static void WriteJson(Utf8JsonWriter json, VolumeSummary v)
    {
        json.WriteStartObject();
        json.WriteString("id", v.Id);
        json.WriteNumber("size", v.Size);
        json.WriteString("mode", Mode(v.Mode));
        if (string.IsNullOrEmpty(v.Primary)) json.WriteNull("primary"); else json.WriteString("primary", v.Primary);
        json.WriteStartArray("replicas");
        foreach (var r in v.Replicas) json.WriteStringValue(r);
        json.WriteEndArray();
        json.WriteString("version", v.Version);
        if (string.IsNullOrEmpty(v.Name)) json.WriteNull("name"); else json.WriteString("name", v.Name);
        json.WriteString("health", v.Health);
        if (string.IsNullOrEmpty(v.Parent)) json.WriteNull("parent"); else json.WriteString("parent", v.Parent);
        // Only a volume in the trash has it (`trash ls --json`): when it was removed.
        if (v.IsTrashed) json.WriteString("trashed", Time(v.TrashedAtUnixMs));
        json.WriteEndObject();
    }

    /// <summary>A time as operators read it: ISO 8601, UTC, to the second.</summary>
    public static string Time(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Json(IReadOnlyList<VolumeSummary> volumes)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var v in volumes) WriteJson(json, v);
            json.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
