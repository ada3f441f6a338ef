// Text and JSON forms of management answers exactly as SPEC.md shows them (`cloudfs ls`, `cloudfs cluster show`).
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace CloudFs.Actors.Management;

public static class ManagementFormat
{
    /// <summary>One `cloudfs ls` line: id, size, mode, primary (`-`), replicas (comma-joined), version, name (`-`),
    /// health, parent version (`-`).</summary>
    public static string VolumeLine(VolumeSummary v) => string.Join(' ',
        v.Id, v.Size.ToString(CultureInfo.InvariantCulture), Mode(v.Mode), v.Primary ?? "-",
        v.Replicas.Count == 0 ? "-" : string.Join(',', v.Replicas), v.Version, v.Name ?? "-", v.Health, v.Parent ?? "-");

    public static string VolumeLines(VolumeList list)
    {
        var text = new StringBuilder();
        foreach (var v in list.Volumes) text.Append(VolumeLine(v)).Append('\n');
        return text.ToString();
    }

    /// <summary>`cloudfs ls --json`: an array of objects with id, size, mode, primary, replicas, version, name, health, parent.</summary>
    public static string VolumesJson(VolumeList list)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var v in list.Volumes)
            {
                json.WriteStartObject();
                json.WriteString("id", v.Id);
                json.WriteNumber("size", v.Size);
                json.WriteString("mode", Mode(v.Mode));
                if (v.Primary is null) json.WriteNull("primary"); else json.WriteString("primary", v.Primary);
                json.WriteStartArray("replicas");
                foreach (var r in v.Replicas) json.WriteStringValue(r);
                json.WriteEndArray();
                json.WriteString("version", v.Version);
                if (v.Name is null) json.WriteNull("name"); else json.WriteString("name", v.Name);
                json.WriteString("health", v.Health);
                if (v.Parent is null) json.WriteNull("parent"); else json.WriteString("parent", v.Parent);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>`cloudfs cluster show`: one line per member (address, roles, status, reachability, host id), then `Count: N`.</summary>
    public static string ClusterShow(ClusterMembers members)
    {
        var text = new StringBuilder();
        foreach (var m in members.Members)
            text.Append(m.Address).Append(" | [").AppendJoin(',', m.Roles).Append("] | ")
                .Append(m.Status).Append(" | ").Append(m.Reachability).Append(" | ").Append(m.HostId).Append('\n');
        text.Append("Count: ").Append(members.Members.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        return text.ToString();
    }

    public static string Mode(BlockDevice.VolumeMode mode) => mode == BlockDevice.VolumeMode.Sync ? "sync" : "async";
}
