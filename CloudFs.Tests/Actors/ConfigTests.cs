// hocon/cloudfs.conf as embedded and as layered by CloudFsNode: defaults, file over defaults, flags over both.
using CloudFs.Actors.Node;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Tests.Actors;

public sealed class ConfigTests
{
    [Fact]
    public void Embedded_config_is_the_file_in_hocon()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "hocon", "cloudfs.conf"))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        var onDisk = Akka.Configuration.ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(dir!, "hocon", "cloudfs.conf")));
        Assert.Equal(onDisk.ToString(), CloudFsConfig.Default().ToString());
    }

    [Fact]
    public void Defaults_match_the_spec()
    {
        var c = CloudFsConfig.Default();
        Assert.Equal("data/cloudfs.log", c.GetString("cloudfs.device"));
        Assert.Equal(4L << 30, c.GetByteSize("cloudfs.size"));
        Assert.Equal((4053, 8090, 10809), (c.GetInt("cloudfs.akka-port"), c.GetInt("cloudfs.http-port"), c.GetInt("cloudfs.nbd-port")));
        Assert.Equal("cloudfs.persistence.journal", c.GetString("akka.persistence.journal.plugin"));
        Assert.Equal("cloudfs.persistence.snapshot-store", c.GetString("akka.persistence.snapshot-store.plugin"));
        Assert.Equal("cluster", c.GetString("akka.actor.provider"));
        Assert.Equal(TimeSpan.FromSeconds(5), c.GetTimeSpan("cloudfs.checkpoint-interval"));
        var store = CloudFsConfig.ToStoreOptions(CloudFsSettings.From(c), null);
        // The node keeps 24 h of versions (SPEC.md); the engine alone keeps none unless asked.
        Assert.Equal(new LogStoreOptions { Path = "data/cloudfs.log", RetentionTime = TimeSpan.FromHours(24) } with { Log = null }, store with { Log = null });
    }

    [Theory]
    [InlineData(null, "INFO")]
    [InlineData("debug", "DEBUG")]
    [InlineData("warning", "WARNING")]
    public void The_log_level_flag_sets_what_the_node_logs(string? level, string akkaLevel)
    {
        var c = CloudFsConfig.Build(new NodeOptions { LogLevel = level });
        Assert.Equal(akkaLevel, c.GetString("akka.loglevel"));
        Assert.Equal(level ?? "info", c.GetString("cloudfs.log-level"));
        Assert.Contains("CloudFs.Actors.Node.NodeLogger, CloudFs.Actors", c.GetStringList("akka.loggers"));
        var e = Assert.Throws<SettingsException>(() => CloudFsConfig.Build(new NodeOptions { LogLevel = "verbose" }));
        Assert.Equal("the setting cloudfs.log-level = verbose is not a log level (error, warning, info or debug)", e.Message);
    }

    [Fact]
    public void Flags_override_a_config_file_which_overrides_the_defaults()
    {
        var file = Path.Combine(Path.GetTempPath(), $"cloudfs-config-{Guid.NewGuid():N}.conf");
        File.WriteAllText(file, "cloudfs { http-port = 9999, nbd-port = 11111, checkpoint-interval = 2s, device = \"/from/file\", volumes.passivate-idle-after = 3m }");
        try
        {
            var host = Id160.Random();
            var (config, settings) = CloudFsConfig.Load(new NodeOptions
            {
                ConfigFile = file, NbdPort = 12345, AkkaPort = 0, Listen = "127.0.0.9", HostId = host,
                Seeds = ["127.0.0.2", "127.0.0.3:5000"],
            });
            var options = CloudFsConfig.ToOptions(settings, file);
            Assert.Equal(9999, options.HttpPort);          // file
            Assert.Equal(12345, options.NbdPort);          // flag over file
            Assert.Equal("/from/file", options.DevicePath); // flag left at its default does not override
            Assert.Equal(host, options.HostId);
            Assert.Equal(TimeSpan.FromSeconds(2), CloudFsConfig.ToStoreOptions(settings, null).CheckpointInterval);
            Assert.Equal(TimeSpan.FromMinutes(3), settings.Volumes.PassivateIdleAfter);
            Assert.Equal("127.0.0.9", config.GetString("akka.remote.dot-netty.tcp.hostname"));
            Assert.Equal(TimeSpan.FromMinutes(3), config.GetTimeSpan("akka.cluster.sharding.passivate-idle-entity-after"));
            Assert.Equal(0, config.GetInt("akka.remote.dot-netty.tcp.port"));
            Assert.Equal(["akka.tcp://cloudfs@127.0.0.2:4053", "akka.tcp://cloudfs@127.0.0.3:5000"], config.GetStringList("akka.cluster.seed-nodes"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void A_missing_config_file_is_a_clear_error()
    {
        var e = Assert.Throws<FileNotFoundException>(() => CloudFsConfig.Build(new NodeOptions { ConfigFile = "/nonexistent/cloudfs.conf" }));
        Assert.Contains("/nonexistent/cloudfs.conf", e.Message);
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("127.0.0.1:notaport", "")]
    [InlineData("127.0.0.1:70000", "")]
    public void Bad_addresses_are_refused(string text, string _)
    {
        Assert.Throws<FormatException>(() => CloudFsConfig.SeedAddress(text));
    }

    [Fact]
    public void Tls_and_insecure_flags_become_settings_and_come_back_as_options()
    {
        Assert.Equal((null, false), (CloudFsConfig.ToOptions(CloudFsSettings.Default, null).TlsDirectory, CloudFsConfig.ToOptions(CloudFsSettings.Default, null).Insecure));
        var (config, settings) = CloudFsConfig.Load(new NodeOptions { TlsDirectory = "/etc/cloudfs/node1", Insecure = true });
        Assert.Equal("/etc/cloudfs/node1", config.GetString("cloudfs.tls.directory"));
        Assert.True(config.GetBoolean("cloudfs.tls.insecure"));
        var options = CloudFsConfig.ToOptions(settings, null);
        Assert.Equal(("/etc/cloudfs/node1", true), (options.TlsDirectory, options.Insecure));
    }
}
