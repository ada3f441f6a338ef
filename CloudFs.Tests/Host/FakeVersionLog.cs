// An IVersionLog for the HTTP API's tests: a toy stream format of 8-byte entries, where an entry "BADENTRY" is refused.
using CloudFs.BlockDevice;
using CloudFs.Host.Http;

namespace CloudFs.Tests.Host;

internal sealed class FakeVersionLog : IVersionLog
{
    public readonly List<VolumeInfo> Volumes = [];
    public readonly List<string> Applied = [];
    public Id160 Known = Id160.Random();
    public Id160 Compacted = Id160.Random();
    public byte[] StreamBytes = "ENTRY001ENTRY002"u8.ToArray();

    public IReadOnlyList<VolumeInfo> ListVolumes() => Volumes;
    public LogUsage Usage => new(1L << 30, 48L << 20, 16 << 20, 64, 61, 40L << 20);

    public async Task StreamAsync(Id160 afterVersion, Stream destination, bool follow, CancellationToken ct)
    {
        if (afterVersion == Compacted) throw new VersionCompactedException(afterVersion, 7);
        if (afterVersion != Known) throw new UnknownVersionException(afterVersion);
        await destination.WriteAsync(StreamBytes, ct);
    }

    public async Task<ApplyResult> ApplyAsync(Stream source, bool import, CancellationToken ct)
    {
        var entry = new byte[8];
        long applied = 0;
        while (true)
        {
            var got = 0;
            while (got < 8)
            {
                var n = await source.ReadAsync(entry.AsMemory(got), ct);
                if (n == 0) break;
                got += n;
            }
            if (got == 0) return new ApplyResult(applied, null, null, null);
            var text = System.Text.Encoding.ASCII.GetString(entry, 0, got);
            if (got < 8 || text == "BADENTRY") return new ApplyResult(applied, null, null, $"entry {applied + 1} failed its checksum");
            Applied.Add(text);
            applied++;
        }
    }
}
