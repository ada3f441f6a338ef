// The pure parts of `cloudfs scrub` / `cloudfs verify`: which hosts a differing range names, what a repair cleared,
// the health word, the digest range size, and the lines the CLI prints.
using CloudFs.Actors.Integrity;
using CloudFs.Actors.Management;
using CloudFs.Actors.Replication;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;

namespace CloudFs.Tests.Actors;

public sealed class IntegrityReportTests
{
    private const long MiB = 1 << 20;

    private static VolumeDigested Digest(string host, params string[] ranges)
    {
        var digests = new byte[ranges.Length * 20];
        var unreadable = new byte[ranges.Length];
        for (var i = 0; i < ranges.Length; i++)
        {
            if (ranges[i] == "?") unreadable[i] = 1;
            else digests.AsSpan(i * 20, 20).Fill((byte)ranges[i][0]);
        }
        return new VolumeDigested(host, 5, "v", MiB, digests, unreadable);
    }

    [Fact]
    public void Verify_names_the_hosts_outside_the_majority_and_joins_runs_of_ranges()
    {
        var digests = new[] { ("p", Digest("p", "a", "b", "c", "d", "e")), ("r1", Digest("r1", "a", "x", "x", "d", "e")), ("r2", Digest("r2", "a", "b", "c", "d", "?")) };

        var lines = IntegrityChecks.Compare(digests, "p", MiB, 5 * MiB - 512);

        Assert.Equal(2, lines.Length);
        Assert.Equal((MiB, 2 * MiB, "different content"), (lines[0].Offset, lines[0].Length, lines[0].Why));
        Assert.Equal(["r1"], lines[0].Hosts);
        Assert.Equal((4 * MiB, MiB - 512, "unreadable there"), (lines[1].Offset, lines[1].Length, lines[1].Why));
        Assert.Equal(["r2"], lines[1].Hosts);
    }

    [Fact]
    public void A_tie_between_two_copies_goes_to_the_primary()
    {
        var lines = IntegrityChecks.Compare([("p", Digest("p", "a")), ("r", Digest("r", "b"))], "p", MiB, MiB);
        Assert.Equal(["r"], Assert.Single(lines).Hosts);
    }

    [Fact]
    public void What_a_repair_cleared_is_what_was_damaged_before_and_not_after()
    {
        var before = new[] { new DamagedRange(0, 4096, "a"), new DamagedRange(8192, 512, "b") };
        var after = new[] { new DamagedRange(1024, 512, "a") };
        Assert.Equal([(0L, 1024L, "a"), (1536L, 2560L, "a"), (8192L, 512L, "b")], IntegrityAgent.Subtract(before, after).ToArray());
    }

    [Fact]
    public void Digest_ranges_are_a_mebibyte_until_a_volume_would_need_more_than_32768()
    {
        Assert.Equal(MiB, IntegrityChecks.DigestRangeBytes(8L << 30));
        Assert.Equal(MiB, IntegrityChecks.DigestRangeBytes(32L << 30));
        Assert.Equal(2 * MiB, IntegrityChecks.DigestRangeBytes((32L << 30) + 512));
        Assert.Equal(32 * MiB, IntegrityChecks.DigestRangeBytes(1L << 40));
    }

    [Fact]
    public void Scrub_and_verify_print_one_line_per_range_and_replica()
    {
        var scrub = new ScrubReport([new ScrubHostLine("h1", 100, 1, 1, null)], [new ScrubRangeLine("v1", "h1", 4096, 512, "repaired", "log block 9 fails its checksum")]);
        Assert.Equal(["v1 h1 4096 512 repaired log block 9 fails its checksum"], IntegrityCommands.ScrubLines(scrub));
        Assert.True(scrub.Clean);
        Assert.Contains("\"clean\": true", IntegrityCommands.ScrubJson(scrub));

        var verify = new VerifyReport("v1", [new VerifyReplicaLine("h1", 7, "x", "equal", true), new VerifyReplicaLine("h2", 5, "y", "behind by 2 entries", false)],
            true, 0, null, MiB, 8, [new VerifyRangeLine(0, MiB, ["h2", "h3"], "different content")], null);
        Assert.Equal(["h1 7 x equal", "h2 5 y behind by 2 entries", $"0 {MiB} h2,h3 different content"], IntegrityCommands.VerifyLines(verify));
        Assert.False(verify.Equal);
    }
}
