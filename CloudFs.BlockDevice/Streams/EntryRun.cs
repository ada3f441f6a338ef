// One bounded run of whole entries read out of the log for a feed or a stream.
namespace CloudFs.BlockDevice.Streams;

/// <summary>A run of whole entries of one volume, byte for byte as <see cref="VersionStreams.StreamAsync(Id160, long, Stream, bool, CancellationToken)"/> writes them.</summary>
/// <param name="LastLsn">Lsn of the last entry in <paramref name="Data"/> (the requested after-lsn when it is empty).</param>
/// <param name="HeadLsn">The volume's head lsn when the chunk was read.</param>
public sealed record EntryRun(ReadOnlyMemory<byte> Data, long LastLsn, long HeadLsn);
