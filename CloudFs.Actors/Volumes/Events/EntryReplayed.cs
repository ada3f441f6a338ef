// Event as replay yields it: an entry's header only (the journal never reads volume data to recover).
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Volumes.Events;

public sealed record EntryReplayed(EntryHeaderInfo Header) : IVolumeEvent;
