// The engine's side of applying a version stream: chain admission of each verified entry, and the log's flush.
using CloudFs.BlockDevice.Format;
using CloudFs.BlockDevice.Log;

namespace CloudFs.BlockDevice.Streams;

/// <summary>What chain admission made of a streamed entry: queued (Item), already held (Skip), or refused (Error;
/// IsClaimed when the chain's owner on this host is writing it).</summary>
internal readonly record struct StreamAdmission(EntryItem? Item, string? Error, bool IsFork, bool Skip, bool IsClaimed = false)
{
    public static StreamAdmission Held => new(null, null, false, true);

    public static StreamAdmission Queued(EntryItem item) => new(item, null, false, false);

    public static StreamAdmission Refused(string error, bool isFork = false, bool isClaimed = false) => new(null, error, isFork, false, isClaimed);
}

internal interface IStreamTarget
{
    /// <summary>True when this host holds <paramref name="volume"/> (a stream that creates it is then no import).</summary>
    bool Holds(Id160 volume);

    /// <summary>Chain admission of a verified entry (checksums, chain, lsn, bounds); a queued entry is owned by the log.
    /// May throw a <see cref="CloudFsException"/>, which stops the apply like a refusal.</summary>
    StreamAdmission Admit(EntryBuffer entry, EntryHeader header);

    /// <summary>Makes everything queued so far durable: completes once it is.</summary>
    Task FlushAsync();

    /// <summary>A note for the node's log (a failed progress handler, a failed stream reader).</summary>
    void Log(string message);
}
