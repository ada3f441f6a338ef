// cloudfs.http { }: who may POST /log, and the limits on request bodies.
namespace CloudFs.Actors.Settings;

/// <param name="AllowRemoteLog">POST /log from addresses other than loopback.</param>
/// <param name="MaxBodySize">Largest request body, POST /log excepted; a PUT is buffered whole.</param>
/// <param name="MinBodyRate">Slowest request body accepted after the grace period, bytes per second; 0: no limit.</param>
/// <param name="MinBodyRateGrace">How long a body may be slower than that at first (more than 1 s: Kestrel's minimum).</param>
public sealed record HttpSettings(bool AllowRemoteLog, int MaxBodySize, double MinBodyRate, TimeSpan MinBodyRateGrace)
{
    public static HttpSettings Read(SettingsReader r)
    {
        var settings = new HttpSettings(
            r.Flag("cloudfs.http.allow-remote-log"),
            (int)r.Bytes("cloudfs.http.max-body-size", min: 512, max: int.MaxValue),
            r.Number("cloudfs.http.min-body-rate", min: 0),
            r.Duration("cloudfs.http.min-body-rate-grace"));
        if (settings.MinBodyRateGrace <= TimeSpan.FromSeconds(1)) throw r.Invalid("cloudfs.http.min-body-rate-grace", "longer than 1s (Kestrel's minimum)");
        return settings;
    }
}
