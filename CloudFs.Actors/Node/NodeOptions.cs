// What `cloudfs node` was asked for; every field is a CLI flag and a HOCON setting (cloudfs { }).
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

public sealed record NodeOptions
{
    public string DevicePath { get; init; } = "data/cloudfs.log";
    public long Size { get; init; } = 4L << 30;
    public Id160? HostId { get; init; }
    public string Listen { get; init; } = "127.0.0.1";
    public int AkkaPort { get; init; } = 4053;
    public int HttpPort { get; init; } = 8090;
    public int NbdPort { get; init; } = 10809;
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
