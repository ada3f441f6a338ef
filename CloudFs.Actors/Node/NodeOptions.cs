// What `cloudfs node` was asked for; every field is a CLI flag and a HOCON setting (cloudfs { }). A field left as it is
// holds the built-in hocon/cloudfs.conf's value (no default of its own) and does not override a --config file.
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

public sealed record NodeOptions
{
    private static NodeSettings Builtin => CloudFsSettings.Default.Node;

    public string DevicePath { get; init; } = Builtin.Device;
    public long Size { get; init; } = Builtin.Size;
    public Id160? HostId { get; init; }
    public string Listen { get; init; } = Builtin.Listen;
    public int AkkaPort { get; init; } = Builtin.AkkaPort;
    public int HttpPort { get; init; } = Builtin.HttpPort;
    public int NbdPort { get; init; } = Builtin.NbdPort;
    /// <summary>Other nodes to join, "IP" or "IP:PORT" (akka port).</summary>
    public IReadOnlyList<string> Seeds { get; init; } = [];
    /// <summary>A node certificate directory (`cloudfs cert issue`): every channel uses TLS with it. Null: no TLS.</summary>
    public string? TlsDirectory { get; init; }
    /// <summary>Listen on an address other than loopback without TLS (refused otherwise).</summary>
    public bool Insecure { get; init; }
    /// <summary>error, warning, info or debug (cloudfs.log-level); null: the config's (info).</summary>
    public string? LogLevel { get; init; }
    /// <summary>Extra HOCON layered over hocon/cloudfs.conf.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>Tests: adjusts the engine's settings the config gave (e.g. to put a fault-injecting device under the log).</summary>
    internal Func<LogStoreOptions, LogStoreOptions>? AdjustStore { get; init; }

    /// <summary>Tests: an impostor's build, which runs with another host's certificate instead of refusing to start.</summary>
    internal bool Impostor { get; init; }
}
