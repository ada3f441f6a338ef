// Example-based tests of the extent index's behaviours that the model properties check only in aggregate:
// splitting, merging, snapshot isolation and sharing, branch fall-through, relocation, frozen snapshots.
namespace CloudFs.Tests.Index;

using CloudFs.BlockDevice.Index;

public sealed class ExtentIndexTests
{
    private static List<Extent> Look(ExtentIndex index, long start, long count)
    {
        var output = new List<Extent>();
        index.Lookup(start, count, output);
        return output;
    }

    [Fact]
    public void Overwrite_in_the_middle_splits_an_extent_in_three()
    {
        var index = new ExtentIndex();
        index.Insert(100, 50, 1000, 7);
        index.Insert(120, 10, 5000, 9);
        Assert.Equal(
            [new Extent(100, 20, 1000, 7), new Extent(120, 10, 5000, 9), new Extent(130, 20, 1030, 7)],
            index.Enumerate().ToList());
        Assert.Equal(3, index.Count);
    }

    [Fact]
    public void Lookup_clips_to_the_range_and_leaves_holes_out()
    {
        var index = new ExtentIndex();
        index.Insert(10, 10, 500, 1);
        index.Insert(30, 10, Extent.ZeroLogBlock, 2);
        Assert.Equal([new Extent(15, 5, 505, 1), new Extent(30, 3, Extent.ZeroLogBlock, 2)], Look(index, 15, 18));
        Assert.Empty(Look(index, 20, 10));
    }

    [Fact]
    public void Writes_contiguous_in_both_spaces_with_one_entry_merge_and_others_do_not()
    {
        var index = new ExtentIndex();
        index.Insert(0, 8, 100, 1);
        index.Insert(8, 8, 108, 1);     // contiguous, same entry: merges
        index.Insert(16, 8, 116, 2);    // another entry: stays apart (its checksums live elsewhere)
        index.Insert(24, 8, 200, 2);    // not contiguous in the log
        Assert.Equal(
            [new Extent(0, 16, 100, 1), new Extent(16, 8, 116, 2), new Extent(24, 8, 200, 2)],
            index.Enumerate().ToList());
    }

    [Fact]
    public void Remove_across_many_pages_drops_them_and_trims_the_ends()
    {
        var index = new ExtentIndex(pageCapacity: 4);
        for (int i = 0; i < 100; i++) index.Insert(i * 10, 5, 10_000 + i * 100, i);
        index.Remove(12, 978);
        Assert.Equal([new Extent(0, 5, 10_000, 0), new Extent(10, 2, 10_100, 1), new Extent(990, 5, 19_900, 99)], index.Enumerate().ToList());
        Assert.Equal(3, index.Count);
    }

    [Fact]
    public void Snapshot_is_isolated_from_later_changes_and_shares_untouched_pages()
    {
        var live = new ExtentIndex(pageCapacity: 8);
        for (int i = 0; i < 400; i++) live.Insert(i * 4, 2, 1000 + i * 2, i);
        var before = live.Enumerate().ToList();
        var snap = live.Snapshot();
        Assert.Equal(live.PageCount, snap.PagesSharedWith(live));

        live.Insert(801, 2, 90_000, 1000);
        live.Remove(0, 40);
        Assert.Equal(before, snap.Enumerate().ToList());
        Assert.Equal(before.Count, snap.Count);
        Assert.Equal([new Extent(800, 1, 1400, 200), new Extent(801, 2, 90_000, 1000)], Look(live, 800, 3));
        // Copy-on-write touched only the pages written to: the rest are still the same objects.
        Assert.InRange(snap.PagesSharedWith(live), live.PageCount - 4, live.PageCount - 1);
    }

    [Fact]
    public void Snapshot_is_frozen_against_insert_and_remove()
    {
        var live = new ExtentIndex();
        live.Insert(0, 4, 10, 1);
        var snap = live.Snapshot();
        Assert.True(snap.IsFrozen);
        Assert.False(live.IsFrozen);
        Assert.Throws<InvalidOperationException>(() => snap.Insert(0, 1, 99, 2));
        Assert.Throws<InvalidOperationException>(() => snap.Remove(0, 1));
        Assert.Equal([new Extent(0, 4, 10, 1)], snap.Enumerate().ToList());
    }

    [Fact]
    public void Branch_reads_holes_through_its_parent_and_zeros_hide_the_parent()
    {
        var original = new ExtentIndex();
        original.Insert(0, 100, 1000, 1);
        var branch = original.Branch();
        Assert.NotNull(branch.Parent);
        Assert.Equal(0, branch.Count);
        original.Insert(0, 100, 7000, 5);       // the branch was taken before this
        branch.Insert(10, 10, 3000, 2);
        branch.Insert(50, 10, Extent.ZeroLogBlock, 3);
        Assert.Equal(
            [new Extent(5, 5, 1005, 1), new Extent(10, 10, 3000, 2), new Extent(20, 30, 1020, 1),
             new Extent(50, 10, Extent.ZeroLogBlock, 3), new Extent(60, 5, 1060, 1)],
            Look(branch, 5, 60));
        branch.Remove(10, 5);                    // a hole in the child falls through again
        Assert.Equal([new Extent(12, 3, 1012, 1), new Extent(15, 2, 3005, 2)], Look(branch, 12, 5));
        Assert.Equal(2, branch.Count);
    }

    [Fact]
    public void Branch_of_a_branch_falls_through_two_levels()
    {
        var a = new ExtentIndex();
        a.Insert(0, 10, 100, 1);
        var b = a.Branch();
        b.Insert(2, 2, 200, 2);
        var c = b.Branch();
        c.Insert(5, 1, 300, 3);
        Assert.Equal(
            [new Extent(0, 2, 100, 1), new Extent(2, 2, 200, 2), new Extent(4, 1, 104, 1), new Extent(5, 1, 300, 3), new Extent(6, 4, 106, 1)],
            Look(c, 0, 10));
    }

    [Fact]
    public void Relocate_moves_only_what_still_points_at_the_old_blocks()
    {
        var index = new ExtentIndex();
        index.Insert(0, 100, 1000, 1);
        index.Insert(40, 10, 5000, 2);           // overwritten since: stays
        long moved = index.Relocate(20, 60, 1020, 9020, 3);
        Assert.Equal(50, moved);
        Assert.Equal(
            [new Extent(0, 20, 1000, 1), new Extent(20, 20, 9020, 3), new Extent(40, 10, 5000, 2),
             new Extent(50, 30, 9050, 3), new Extent(80, 20, 1080, 1)],
            index.Enumerate().ToList());
        // Offsets must agree: the same blocks at another log offset are not the old place.
        Assert.Equal(0, index.Relocate(0, 10, 1001, 8000, 4));
    }

    [Fact]
    public void Relocate_that_splits_an_extent_leaves_a_snapshot_sharing_the_page_untouched()
    {
        var live = new ExtentIndex();
        live.Insert(0, 100, 1000, 1);
        var snap = live.Snapshot();
        Assert.Equal(10, live.Relocate(10, 10, 1010, 4000, 2));
        Assert.Equal([new Extent(0, 100, 1000, 1)], snap.Enumerate().ToList());
        Assert.Equal([new Extent(0, 10, 1000, 1), new Extent(10, 10, 4000, 2), new Extent(20, 80, 1020, 1)], live.Enumerate().ToList());
    }

    [Fact]
    public void Relocate_of_whole_extents_never_changes_an_index_sharing_the_page()
    {
        var live = new ExtentIndex();
        live.Insert(0, 10, 1000, 1);
        live.Insert(10, 10, 2000, 2);
        var snap = live.Snapshot();
        Assert.Equal(10, snap.Relocate(0, 10, 1000, 6000, 3));
        Assert.Equal([new Extent(0, 10, 6000, 3), new Extent(10, 10, 2000, 2)], snap.Enumerate().ToList());
        Assert.Equal([new Extent(0, 10, 1000, 1), new Extent(10, 10, 2000, 2)], live.Enumerate().ToList());
        Assert.Equal(10, live.Relocate(0, 10, 1000, 6000, 3));
        Assert.Equal(snap.Enumerate().ToList(), live.Enumerate().ToList());
        // Replaying the same relocation (recovery rolls it forward again) changes nothing and reports the same count.
        Assert.Equal(10, live.Relocate(0, 10, 1000, 6000, 3));
        Assert.Equal(snap.Enumerate().ToList(), live.Enumerate().ToList());
    }

    [Fact]
    public void Relocate_of_a_frozen_index_publishes_a_new_tree_and_leaves_held_pages_alone()
    {
        var live = new ExtentIndex(pageCapacity: 4);
        for (int i = 0; i < 40; i++) live.Insert(i * 10, 5, 1000 + i * 5, i);
        var snap = live.Snapshot();
        int sharedBefore = snap.PagesSharedWith(live);
        Assert.Equal(3, snap.Relocate(101, 3, 1051, 8000, 99));   // splits the extent at 100 in the snapshot only
        Assert.Equal(sharedBefore - 1, snap.PagesSharedWith(live));
        Assert.Equal([new Extent(100, 1, 1050, 10), new Extent(101, 3, 8000, 99), new Extent(104, 1, 1054, 10)], Look(snap, 100, 5));
        Assert.Equal([new Extent(100, 5, 1050, 10)], Look(live, 100, 5));
        Assert.Equal(42, snap.Count);
        Assert.Equal(40, live.Count);
    }

    [Fact]
    public void Bad_arguments_are_refused_and_change_nothing()
    {
        var index = new ExtentIndex();
        index.Insert(0, 4, 10, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Insert(-1, 4, 10, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Insert(0, -4, 10, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Insert(0, 4, -2, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Insert(long.MaxValue - 2, 4, 10, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Remove(0, -1));
        Assert.Equal([new Extent(0, 4, 10, 1)], index.Enumerate().ToList());
    }

    [Fact]
    public void Lookup_allocates_nothing_once_the_output_list_has_room()
    {
        var parent = new ExtentIndex(pageCapacity: 8);
        for (int i = 0; i < 1000; i++) parent.Insert(i * 3, 2, 10_000 + i * 2, i);
        var branch = parent.Branch();
        for (int i = 0; i < 300; i++) branch.Insert(i * 7, 1, 90_000 + i, 5000 + i);
        var output = new List<Extent>(256);
        void Run()
        {
            for (int i = 0; i < 2000; i++)
            {
                output.Clear();
                branch.Lookup(i * 13 % 3000, 1 + i % 40, output);
            }
        }
        Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Sequential_and_random_lookups_agree_with_a_fresh_search()
    {
        // Lookups reuse the page found last time; jumping around must never return a stale page's answer.
        var index = new ExtentIndex(pageCapacity: 4);
        for (int i = 0; i < 200; i++) index.Insert(i * 5, 3, 1000 + i * 3, i);
        var rng = new Random(7);
        for (int k = 0; k < 2000; k++)
        {
            long at = k % 3 == 0 ? rng.Next(1000) : k % 1000;
            var got = Look(index, at, 1);
            long slot = at / 5, off = at % 5;
            if (off < 3) Assert.Equal([new Extent(at, 1, 1000 + slot * 3 + off, slot)], got);
            else Assert.Empty(got);
        }
    }

    [Fact]
    public void A_reader_that_began_before_a_frozen_index_was_relocated_finishes_on_the_tree_it_started_on()
    {
        // Branch parents and checkpoint snapshots are read without the relocating volume's lock: a reader must see
        // one whole tree, before or after, never a tree being changed under it.
        var live = new ExtentIndex(pageCapacity: 4);
        for (int i = 0; i < 64; i++) live.Insert(i * 10, 8, 1000 + i * 8, i);
        var snap = live.Snapshot();
        var before = snap.Enumerate().ToList();
        using var reader = snap.Enumerate().GetEnumerator();
        Assert.True(reader.MoveNext());
        var seen = new List<Extent> { reader.Current };
        for (int i = 1; i < 64; i += 2) Assert.Equal(4, snap.Relocate(i * 10 + 2, 4, 1000 + i * 8 + 2, 100_000 + i * 8 + 2, 1000 + i));
        while (reader.MoveNext()) seen.Add(reader.Current);
        Assert.Equal(before, seen);
        Assert.Equal(64 + 2 * 32, snap.Count);
        Assert.Equal([new Extent(12, 4, 100_010, 1001)], Look(snap, 12, 4));
    }
}
