// Serialization code for the management API's types, generated at compile time: the CLI is a process per command, and
// reflection-built (System.Reflection.Emit) serializers were compiled afresh by every `cloudfs ls` (BENCHMARKS.md,
// "CLI start-up"). ManagementJson.Options uses it first and falls back to reflection for a type not listed here.
using System.Text.Json.Serialization;
using CloudFs.Actors.Management;

namespace CloudFs.Host.Cli;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(VolumeSummary))]
[JsonSerializable(typeof(VolumeSummary[]))]
[JsonSerializable(typeof(IReadOnlyList<VolumeSummary>))]
[JsonSerializable(typeof(StatusCommand.ClusterStatus))]
[JsonSerializable(typeof(ClusterMembers))]
[JsonSerializable(typeof(CommandOutput))]
[JsonSerializable(typeof(ScrubReport))]
[JsonSerializable(typeof(VerifyReport))]
[JsonSerializable(typeof(VersionDiff))]
[JsonSerializable(typeof(VolumeDetached))]
[JsonSerializable(typeof(string[]))]
internal sealed partial class ManagementJsonContext : JsonSerializerContext;
