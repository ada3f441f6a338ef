// Reads the node's settings one key at a time, strictly: the only code that calls Config's getters for cloudfs { }.
// A missing key is a bug (the embedded hocon/cloudfs.conf has every one, so no default is repeated in code) and a
// value of the wrong kind or range is refused naming the key and the value. It remembers every key it read, so a test
// can check that every setting in hocon/cloudfs.conf is read and nothing else is.
using System.Globalization;
using Akka.Configuration;
using Akka.Event;
using CloudFs.Actors.Node;

namespace CloudFs.Actors.Settings;

public sealed class SettingsReader(Config config)
{
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    /// <summary>Every key read so far.</summary>
    public IReadOnlySet<string> KeysRead => _read;

    public string Text(string key) => Get(key, "a string", () => config.GetString(key) ?? throw new FormatException());

    public bool Flag(string key) => Get(key, "on or off", () => config.GetBoolean(key));

    public IReadOnlyList<string> List(string key) => Get(key, "a list of strings", () => config.GetStringList(key).ToArray());

    /// <summary>A TCP port; 0 picks a free one.</summary>
    public int Port(string key) => Check(key, Get(key, "a port number", () => config.GetInt(key)), p => p is >= 0 and <= 65535, "a port number (0 to 65535)");

    public int Count(string key, int min) => Check(key, Get(key, "a whole number", () => config.GetInt(key)), n => n >= min, $"a whole number of at least {min}");

    public double Number(string key, double min) =>
        Check(key, Get(key, "a number", () => config.GetDouble(key)), n => n >= min && double.IsFinite(n), $"a number of at least {min.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>A fraction from 0 to <paramref name="max"/>.</summary>
    public double Fraction(string key, double max = 1) =>
        Check(key, Get(key, "a number", () => config.GetDouble(key)), f => f >= 0 && f <= max, $"a fraction from 0 to {max.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>A size in bytes ("64MiB", "4096") from <paramref name="min"/> to <paramref name="max"/>.</summary>
    public long Bytes(string key, long min = 0, long max = long.MaxValue) =>
        Check(key, Get(key, "a size", () => config.GetByteSize(key) ?? throw new FormatException()), b => b >= min && b <= max,
            max < long.MaxValue ? $"a size from {min} to {max} bytes" : min == 0 ? "a size of 0 bytes or more" : $"a size of at least {min} bytes");

    /// <summary>A duration ("30s", "7d"): positive, or from 0 when <paramref name="zero"/>.</summary>
    public TimeSpan Duration(string key, bool zero = false) =>
        Check(key, Get(key, "a duration", () => config.GetTimeSpan(key)), d => zero ? d >= TimeSpan.Zero : d > TimeSpan.Zero,
            zero ? "a duration of 0 or more" : "a positive duration");

    /// <summary>error, warning, info or debug.</summary>
    public LogLevel Level(string key) => Get(key, "a log level (error, warning, info or debug)", () => NodeLogger.ParseLevel(config.GetString(key) ?? ""));

    private T Get<T>(string key, string what, Func<T> read)
    {
        _read.Add(key);
        bool present;
        try { present = config.HasPath(key); }
        catch (Exception e) when (e is not SettingsException) { present = false; }
        if (!present) throw new SettingsException($"the setting {key} is missing (the built-in hocon/cloudfs.conf has every setting)");
        try { return read(); }
        catch (Exception e) when (e is not SettingsException) { throw Invalid(key, what); }
    }

    private T Check<T>(string key, T value, Func<T, bool> valid, string what) => valid(value) ? value : throw Invalid(key, what);

    /// <summary>"KEY = VALUE is not WHAT", the value as the config has it.</summary>
    public SettingsException Invalid(string key, string what)
    {
        string shown;
        try { shown = config.GetValue(key)?.ToString() ?? "null"; }
        catch (Exception) { shown = "?"; }
        return new SettingsException($"the setting {key} = {shown} is not {what}");
    }
}
