// One replica of a volume in `ls --json`, `status` and /metrics: its host, its state (VolumeHealth decides it) and how
// far it is behind the primary in entries and in stream bytes (null: not known, e.g. no primary).
namespace CloudFs.Actors.Management;

public sealed record ReplicaLag(string Host, string State, long? LagEntries, long? LagBytes) : IManagementMessage
{
    public const string Primary = "primary";
    public const string Current = "current";
    public const string Resyncing = "resyncing";
    public const string Outdated = "outdated";
    public const string Away = "away";
}
