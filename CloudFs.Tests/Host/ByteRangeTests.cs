// RFC 7233 parsing of Range and Content-Range for /volumes/<id>.
using CloudFs.Host.Http;

namespace CloudFs.Tests.Host;

public sealed class ByteRangeTests
{
    [Theory]
    [InlineData(null, "Whole", 0, 999)]
    [InlineData("bytes=0-99", "Satisfiable", 0, 99)]
    [InlineData("bytes=900-5000", "Satisfiable", 900, 999)]
    [InlineData("bytes=10-", "Satisfiable", 10, 999)]
    [InlineData("bytes=-10", "Satisfiable", 990, 999)]
    [InlineData("bytes=-5000", "Satisfiable", 0, 999)]
    [InlineData("bytes=1000-1001", "Unsatisfiable", 0, -1)]
    [InlineData("bytes=-0", "Unsatisfiable", 0, -1)]
    [InlineData("items=0-5", "Whole", 0, 999)]
    [InlineData("bytes=5-4", "Invalid", 0, -1)]
    [InlineData("bytes=a-b", "Invalid", 0, -1)]
    [InlineData("bytes=0-1,3-4", "Invalid", 0, -1)]
    [InlineData("bytes=+1-2", "Invalid", 0, -1)]
    public void Range_header_parses_per_rfc_7233(string? header, string kind, long start, long end)
    {
        var r = ByteRange.ParseRange(header, 1000);
        Assert.Equal((Enum.Parse<RangeKind>(kind), start, end), (r.Kind, r.Start, r.End));
    }

    [Theory]
    [InlineData("bytes 0-511/*", "Satisfiable")]
    [InlineData("bytes 0-511/4096", "Satisfiable")]
    [InlineData("bytes 0-511/8192", "Invalid")]
    [InlineData("bytes 3584-4095/*", "Satisfiable")]
    [InlineData("bytes 3584-4096/*", "Unsatisfiable")]
    [InlineData("bytes 0-511", "Invalid")]
    [InlineData("bytes=0-511/*", "Invalid")]
    [InlineData("", "Invalid")]
    public void Content_range_must_lie_inside_the_volume(string header, string kind)
    {
        Assert.Equal(Enum.Parse<RangeKind>(kind), ByteRange.ParseContentRange(header, 4096).Kind);
    }

    [Theory]
    [InlineData("?0123456789abcdef0123456789abcdef01234567", false, true)]
    [InlineData("?0123456789abcdef0123456789abcdef01234567&follow=1", true, true)]
    [InlineData("?version=0123456789abcdef0123456789abcdef01234567&follow=true", true, true)]
    [InlineData("?follow=1", false, false)]
    [InlineData("?xyz", false, false)]
    [InlineData("", false, false)]
    public void Stream_query_names_a_version_and_optionally_follow(string query, bool follow, bool ok)
    {
        Assert.Equal(ok, HttpApi.TryParseStreamQuery(query, out _, out var f, out var error));
        if (ok) Assert.Equal(follow, f);
        else Assert.NotNull(error);
    }
}
