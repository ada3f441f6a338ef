// Paged listings: following the cursors from the first page yields every accepted id once, in order, in pages no larger
// than the limit, each looking at a bounded number of ids.
using CloudFs.Actors.Replication;
using FsCheck;
using FsCheck.Xunit;

namespace CloudFs.Tests.Actors;

public sealed class VolumePagingTests
{
    private static string[] Ids(int n) => Enumerable.Range(0, n).Select(i => (i * 7919 % 100_003).ToString("x40")).Distinct().Order(StringComparer.Ordinal).ToArray();

    private static List<IReadOnlyList<string>> AllPages(string[] sorted, int limit, int scan, Func<string, bool> include)
    {
        var pages = new List<IReadOnlyList<string>>();
        string? after = null;
        do
        {
            var (ids, next) = VolumePaging.Page(sorted, after, limit, scan, include);
            pages.Add(ids);
            Assert.True(pages.Count <= sorted.Length + 1, "the cursors do not advance");
            after = next;
        } while (after is not null);
        return pages;
    }

    [Property(MaxTest = 100)]
    public void Following_the_cursors_lists_every_id_once_in_order_in_pages_of_at_most_the_limit(NonNegativeInt count, PositiveInt pageLimit)
    {
        var sorted = Ids(count.Get % 3000);
        var limit = 1 + pageLimit.Get % 700;
        var pages = AllPages(sorted, limit, limit, _ => true);
        Assert.All(pages, p => Assert.True(p.Count <= limit));
        Assert.Equal(sorted, pages.SelectMany(p => p));
        Assert.Equal(Math.Max(1, (sorted.Length + limit - 1) / limit), pages.Count);
    }

    [Fact]
    public void A_filtered_listing_looks_at_no_more_than_the_scan_limit_per_page_and_still_finds_every_match()
    {
        var sorted = Ids(10_000);
        var wanted = sorted.Where((_, i) => i % 97 == 0).ToHashSet();
        var looked = 0;
        var maxLooked = 0;
        var pages = new List<IReadOnlyList<string>>();
        string? after = null;
        do
        {
            looked = 0;
            var (ids, next) = VolumePaging.Page(sorted, after, 50, 1000, id => { looked++; return wanted.Contains(id); });
            maxLooked = Math.Max(maxLooked, looked);
            pages.Add(ids);
            after = next;
        } while (after is not null);
        Assert.Equal(1000, maxLooked);
        Assert.Equal(wanted.Order(StringComparer.Ordinal), pages.SelectMany(p => p));
    }

    [Fact]
    public void A_cursor_that_is_no_longer_listed_continues_after_where_it_would_be()
    {
        var sorted = new[] { "a", "c", "e" };
        Assert.Equal(["c", "e"], VolumePaging.Page(sorted, "b", 10, 10, _ => true).Ids);
        Assert.Equal((IReadOnlyList<string>)[], VolumePaging.Page(sorted, "z", 10, 10, _ => true).Ids);
        Assert.Null(VolumePaging.Page(sorted, "z", 10, 10, _ => true).Next);
    }
}
