// The JSON of the management API, shared by the node's routes and the CLI: the management records with snake_case
// names and lower-case enums; a VolumeSummary is exactly SPEC.md's `ls --json` object (VolumeSummaryJson).
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace CloudFs.Host.Cli;

internal static class ManagementJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false), new VolumeSummaryJson() },
        WriteIndented = true,
        TypeInfoResolver = JsonTypeInfoResolver.Combine(ManagementJsonContext.Default, new DefaultJsonTypeInfoResolver()),
    };

    public const string MediaType = "application/json";
}
