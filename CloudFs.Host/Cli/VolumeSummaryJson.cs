// A volume as `cloudfs ls --json` shows it (SPEC.md), in the management API's JSON both ways: the nine fields of an
// `ls` line; the health's detail (`health_detail`, `current_replicas`, `resync_percent`) and per replica its state and
// lag (`lag`: objects with `host`, `state`, `lag_entries`, `lag_bytes`); `protected`: the versions `cloudfs protect`
// keeps (an array, oldest first); and `trashed` (ISO 8601, UTC) only for a
// volume in the trash (`trash ls --json`, `rm --json`).
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
        json.WriteString("health_detail", VolumeHealth.Describe(v));
        json.WriteNumber("current_replicas", v.CurrentReplicas);
        if (v.ResyncPercent is { } percent) json.WriteNumber("resync_percent", percent); else json.WriteNull("resync_percent");
        json.WriteStartArray("lag");
        foreach (var r in v.Lag ?? [])
        {
            json.WriteStartObject();
            json.WriteString("host", r.Host);
            json.WriteString("state", r.State);
            if (r.LagEntries is { } entries) json.WriteNumber("lag_entries", entries); else json.WriteNull("lag_entries");
            if (r.LagBytes is { } bytes) json.WriteNumber("lag_bytes", bytes); else json.WriteNull("lag_bytes");
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("protected");
        foreach (var p in v.Protected) json.WriteStringValue(p);
        json.WriteEndArray();
        if (v.IsTrashed) json.WriteString("trashed", Time(v.TrashedAtUnixMs));
        json.WriteEndObject();
    }

    public override VolumeSummary Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("a volume is a JSON object");
        string? id = null, primary = null, version = null, name = null, parent = null;
        string health = VolumeHealth.Healthy;
        long size = 0, trashed = 0;
        int current = 0;
        int? percent = null;
        var lag = new List<ReplicaLag>();
        var mode = VolumeMode.Async;
        var replicas = new List<string>();
        var protectedVersions = new List<string>();
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
                case "protected":
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) protectedVersions.Add(reader.GetString()!);
                    break;
                case "name": name = reader.GetString(); break;
                case "health": health = reader.GetString() ?? VolumeHealth.Healthy; break;
                case "parent": parent = reader.GetString(); break;
                case "current_replicas": current = reader.GetInt32(); break;
                case "resync_percent": percent = reader.TokenType == JsonTokenType.Null ? null : reader.GetInt32(); break;
                case "lag":
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) lag.Add(ReadLag(ref reader));
                    break;
                case "trashed":
                    trashed = DateTimeOffset.ParseExact(reader.GetString()!, TimeFormat, CultureInfo.InvariantCulture,
                        DateTimeStyles.AssumeUniversal).ToUnixTimeMilliseconds();
                    break;
                default: Skip(ref reader); break;
            }
        }
        return new VolumeSummary(id ?? throw new JsonException("a volume without an id"), size, mode, primary, replicas,
            version ?? "", name, health, parent, trashed, lag, current, percent) { Protected = protectedVersions.Count == 0 ? Array.Empty<string>() : protectedVersions.ToArray() };
    }

    /// <summary>A field this version does not know. TrySkip, not Skip: a converter reading a streamed array (`ls`) gets
    /// its whole object buffered, but not as a final block, and Skip refuses any reader that is not.</summary>
    private static void Skip(ref Utf8JsonReader reader)
    {
        if (!reader.TrySkip()) throw new JsonException("a volume's JSON object ends early");
    }

    private static ReplicaLag ReadLag(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("a replica's lag is a JSON object");
        string? host = null, state = null;
        long? entries = null, bytes = null;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var property = reader.GetString();
            reader.Read();
            switch (property)
            {
                case "host": host = reader.GetString(); break;
                case "state": state = reader.GetString(); break;
                case "lag_entries": entries = reader.TokenType == JsonTokenType.Null ? null : reader.GetInt64(); break;
                case "lag_bytes": bytes = reader.TokenType == JsonTokenType.Null ? null : reader.GetInt64(); break;
                default: Skip(ref reader); break;
            }
        }
        return new ReplicaLag(host ?? throw new JsonException("a replica's lag without a host"), state ?? "", entries, bytes);
    }
}
