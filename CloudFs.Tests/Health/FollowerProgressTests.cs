// A replica's catch-up ends when it has written what it missed, not when those bytes arrived (issue 15: a replica that
// had received 7 MiB of missed entries showed as current with a lag of 7 entries while it was still writing them).
using CloudFs.Actors.Replication;

namespace CloudFs.Tests.Health;

public sealed class FollowerProgressTests
{
    private readonly List<string> _reports = [];
    private readonly FollowerProgress _progress;

    public FollowerProgressTests() =>
        _progress = new FollowerProgress((done, total) => _reports.Add($"catching up {done}/{total}"),
            c => _reports.Add($"following after {c.First}..{c.Last}, {c.Bytes} bytes"));

    [Fact]
    public void A_catch_up_whose_entries_all_arrived_is_still_catching_up_until_they_are_written()
    {
        _progress.Start(10);
        _progress.ChunkSent(14, 4000);
        _progress.Received(14, 17);
        _progress.ChunkSent(17, 3000);
        _progress.Received(17, 17);
        Assert.Equal(["catching up 0/7", "catching up 0/7"], _reports);

        Assert.True(_progress.Held(14, 0));
        _progress.Received(17, 17);   // a keepalive: still not written
        Assert.Equal("catching up 4/7", _reports[^1]);
        Assert.True(_progress.Held(17, 0));
        Assert.Equal("following after 11..17, 7000 bytes", _reports[^1]);

        // After the end, neither keepalives nor later writes report again.
        var count = _reports.Count;
        _progress.Received(17, 17);
        _progress.ChunkSent(18, 100);
        _progress.Received(18, 18);
        _progress.Held(18, 18);
        Assert.Equal(count, _reports.Count);
    }

    [Fact]
    public void A_follower_that_already_holds_the_head_follows_at_once_even_on_an_empty_volume()
    {
        _progress.Start(0);
        _progress.Received(0, 0);
        Assert.Equal(["following after 1..0, 0 bytes"], _reports);

        _reports.Clear();
        _progress.Start(25);
        _progress.Received(25, 25);
        Assert.Equal(["following after 26..25, 0 bytes"], _reports);
    }

    [Fact]
    public void The_heads_acknowledged_and_when_an_acknowledgement_is_due()
    {
        _progress.Start(5);
        _progress.ChunkSent(8, 300);
        Assert.False(_progress.Held(6, 0));   // inside a chunk, nothing more durable
        Assert.True(_progress.Held(8, 0));    // the chunk's last entry
        Assert.True(_progress.Held(8, 8));    // more durable
        Assert.Equal((8L, 8L), _progress.Heads);

        // A new connection measures from its own start.
        _progress.Start(3);
        Assert.Equal((3L, 3L), _progress.Heads);
    }
}
