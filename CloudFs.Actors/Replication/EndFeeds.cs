// The host agent's end of every feed it serves, asked when the node stops (FeedsEndBeforeHandOff), and its answer once
// the feeders have stopped. Local messages: never sent to another member.
namespace CloudFs.Actors.Replication;

internal sealed class EndFeeds
{
    public static readonly EndFeeds Instance = new();
    private EndFeeds() { }
}

internal sealed class FeedsEnded
{
    public static readonly FeedsEnded Instance = new();
    private FeedsEnded() { }
}
