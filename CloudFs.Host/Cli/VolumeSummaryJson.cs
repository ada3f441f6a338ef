// A volume as `cloudfs ls --json` shows it (SPEC.md), in the management API's JSON both ways: the nine fields of an
// `ls` line, and `trashed` (ISO 8601, UTC) only for a volume in the trash (`trash ls --json`, `rm --json`).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal sealed class VolumeSummaryJson : JsonConverter<VolumeSummary>
{
    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    /// <summary>A time as operators read it: ISO 8601, UTC, to the second.</summary>
    public static string Time(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    public override void Write(Utf8JsonWriter json, VolumeSummary v, JsonSerializerOptions options)
    {
        json.WriteStartObject();
        json.WriteString("id", v.Id);
        json.WriteNumber("size", v.Size);
        json.WriteString("mode", VolumeListFormat.Mode(v.Mode));
        if (string.IsNullOrEmpty(v.Primary)) json.WriteNull("primary"); else json.WriteString("primary", v.Primary);
        json.WriteStartArray("replicas");
        foreach (var r in v.Replicas) json.WriteStringValue(r);
        json.WriteEndArray();
        json.WriteString("version", v.Version);
        if (string.IsNullOrEmpty(v.Name)) json.WriteNull("name"); else json.WriteString("name", v.Name);
        json.WriteString("health", v.Health);
        if (string.IsNullOrEmpty(v.Parent)) json.WriteNull("parent"); else json.WriteString("parent", v.Parent);
        if (v.IsTrashed) json.WriteString("trashed", Time(v.TrashedAtUnixMs));
        json.WriteEndObject();
    }

    public override VolumeSummary Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("a volume is a JSON object");
        string? id = null, primary = null, version = null, name = null, parent = null;
        string health = VolumeHealth.Healthy;
        long size = 0, trashed = 0;
        var mode = VolumeMode.Async;
        var replicas = new List<string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var property = reader.GetString();
            reader.Read();
            switch (property)
            {
                case "id": id = reader.GetString(); break;
                case "size": size = reader.GetInt64(); break;
                case "mode": mode = reader.GetString() == "sync" ? VolumeMode.Sync : VolumeMode.Async; break;
                case "primary": primary = reader.GetString(); break;
                case "replicas":
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) replicas.Add(reader.GetString()!);
                    break;
                case "version": version = reader.GetString(); break;
                case "name": name = reader.GetString(); break;
                case "health": health = reader.GetString() ?? VolumeHealth.Healthy; break;
                case "parent": parent = reader.GetString(); break;
                case "trashed":
                    trashed = DateTimeOffset.ParseExact(reader.GetString()!, TimeFormat, CultureInfo.InvariantCulture,
                        DateTimeStyles.AssumeUniversal).ToUnixTimeMilliseconds();
                    break;
                default: reader.Skip(); break;
            }
        }
        return new VolumeSummary(id ?? throw new JsonException("a volume without an id"), size, mode, primary, replicas,
            version ?? "", name, health, parent, trashed);
    }
}
