// CloudFsSettings, the node's one typed view of cloudfs { }: every setting of hocon/cloudfs.conf is read and nothing
// else, a missing setting is named (no default in code stands in for it), and a wrong value is refused naming the key
// and the value.
using Akka.Configuration;
using Akka.Configuration.Hocon;
using CloudFs.Actors.Node;
using CloudFs.Actors.Settings;

namespace CloudFs.Tests.Actors;

public sealed class SettingsTests
{
    // Sections of cloudfs { } that Akka reads itself (a dispatcher and the persistence plugins), not CloudFsSettings.
    private static readonly string[] AkkaSections = ["cloudfs.cluster-dispatcher", "cloudfs.persistence"];

    private static IEnumerable<string> Leaves(string path, HoconValue value) =>
        value.IsObject() ? value.GetObject().Items.SelectMany(item => Leaves($"{path}.{item.Key}", item.Value)) : [path];

    private static string ConfText()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "hocon", "cloudfs.conf"))) dir = Path.GetDirectoryName(dir);
        return File.ReadAllText(Path.Combine(dir ?? throw new InvalidOperationException("hocon/cloudfs.conf not found above the test binaries"), "hocon", "cloudfs.conf"));
    }

    [Fact]
    public void Every_setting_in_the_conf_is_read_and_no_other()
    {
        var conf = CloudFsConfig.Default();
        var leaves = Leaves("cloudfs", conf.GetValue("cloudfs"))
            .Where(key => !AkkaSections.Any(section => key.StartsWith(section + ".", StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal).ToArray();
        var reader = new SettingsReader(conf);
        CloudFsSettings.Read(reader);
        Assert.Equal(leaves, reader.KeysRead.Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public void Every_setting_in_the_conf_has_a_comment()
    {
        // A setting's line follows its comment directly, or follows another setting that shares the comment.
        var path = new List<string>();
        string? previous = null;
        var uncommented = new List<string>();
        foreach (var raw in ConfText().Split('\n'))
        {
            var line = raw.Trim();
            var setting = System.Text.RegularExpressions.Regex.Match(line, @"^([a-z][a-z0-9.-]*)\s*=");
            if (line.EndsWith('{')) path.Add(line.TrimEnd('{').Trim());
            else if (line == "}") path.RemoveAt(path.Count - 1);
            else if (setting.Success && path.Count > 0 && path[0] == "cloudfs")
            {
                var key = string.Join('.', path.Append(setting.Groups[1].Value));
                var settingBefore = previous is not null && System.Text.RegularExpressions.Regex.IsMatch(previous, @"^[a-z][a-z0-9.-]*\s*=");
                if (!AkkaSections.Any(section => key.StartsWith(section + ".", StringComparison.Ordinal)) && previous?.StartsWith('#') != true && !settingBefore)
                    uncommented.Add(key);
            }
            previous = line;
        }
        Assert.Empty(uncommented);
    }

    [Fact]
    public void The_defaults_are_the_conf_s_values()
    {
        // Read back through each kind of value (size, duration, fraction, flag, level, list).
        var d = CloudFsSettings.Default;
        Assert.Equal(64L << 20, d.Nbd.RetainedPayloadBytes);
        Assert.Equal(TimeSpan.FromDays(7), d.Scrub.Interval);
        Assert.Equal(0.02, d.Compaction.Reserve);
        Assert.True(d.CrashDetection.Enabled);
        Assert.Equal(Akka.Event.LogLevel.InfoLevel, d.Node.LogLevel);
        Assert.Empty(d.Node.Seeds);
    }

    [Theory]
    [InlineData("payload-timeout = 30s", "cloudfs.nbd.payload-timeout")]
    [InlineData("prove-within = 30s", "cloudfs.identity.prove-within")]
    [InlineData("log-level = info", "cloudfs.log-level")]
    public void A_setting_missing_from_the_config_is_named(string line, string key)
    {
        var text = ConfText();
        Assert.Contains(line, text);
        var config = ConfigurationFactory.ParseString(text.Replace(line, ""));
        var e = Assert.Throws<SettingsException>(() => CloudFsSettings.From(config));
        Assert.Equal($"the setting {key} is missing (the built-in hocon/cloudfs.conf has every setting)", e.Message);
    }

    [Theory]
    [InlineData("cloudfs.nbd.retained-payload-bytes = -1MiB", "the setting cloudfs.nbd.retained-payload-bytes = -1MiB is not a size of 0 bytes or more")]
    [InlineData("cloudfs.scrub.interval = soon", "the setting cloudfs.scrub.interval = soon is not a duration")]
    [InlineData("cloudfs.volumes.ask-timeout = -5s", "the setting cloudfs.volumes.ask-timeout = -5s is not a duration")]
    [InlineData("cloudfs.placement.tick = 0s", "the setting cloudfs.placement.tick = 0s is not a positive duration")]
    [InlineData("cloudfs.compaction.threshold = 1.5", "the setting cloudfs.compaction.threshold = 1.5 is not a fraction from 0 to 1")]
    [InlineData("cloudfs.direct-io = maybe", "the setting cloudfs.direct-io = maybe is not on or off")]
    [InlineData("cloudfs.akka-port = 70000", "the setting cloudfs.akka-port = 70000 is not a port number (0 to 65535)")]
    [InlineData("cloudfs.listen = \"here\"", "the setting cloudfs.listen = here is not an IP address")]
    [InlineData("cloudfs.replication.chunk = 4MiB", "the setting cloudfs.replication.chunk = 4MiB is not a size from 1 to 2097152 bytes")]
    [InlineData("cloudfs.http.min-body-rate-grace = 1s", "the setting cloudfs.http.min-body-rate-grace = 1s is not longer than 1s (Kestrel's minimum)")]
    [InlineData("cloudfs.nbd.max-connections = 0", "the setting cloudfs.nbd.max-connections = 0 is not a whole number of at least 1")]
    public void A_wrong_value_is_refused_naming_the_key_and_the_value(string hocon, string message)
    {
        var e = Assert.Throws<SettingsException>(() => CloudFsSettings.With(hocon));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void Overrides_change_only_the_settings_they_name()
    {
        var settings = CloudFsSettings.With("cloudfs.scrub { rate = 0, first-delay = 0s }");
        Assert.Equal(CloudFsSettings.Default with { Scrub = CloudFsSettings.Default.Scrub with { BytesPerSecond = 0, FirstDelay = TimeSpan.Zero } },
            settings with { Node = CloudFsSettings.Default.Node });
    }
}
