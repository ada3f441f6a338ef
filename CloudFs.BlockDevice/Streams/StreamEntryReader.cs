// Wire bytes of a version stream → whole, verified entries. The one place that decides which entry kinds travel in a
// stream and how an entry read from one is checked before it is admitted to a chain (header, bounds, CRCs, digest).
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Streams;

/// <param name="refuse">Asked with each entry's header before its body is read: a reason makes the stream stop there,
/// refused (an import the caller did not ask for).</param>
internal sealed class StreamEntryReader(Stream source, Func<EntryHeader, string?>? refuse = null)
{
    private readonly byte[] _header = new byte[EntryHeader.Size];

    /// <summary>The index in the stream of the next entry to read (the entries read so far).</summary>
    public long Index { get; private set; }

    /// <summary>
    /// Entries that travel in a volume's stream as they are in the log. The others are local to the host that wrote
    /// them (compaction's relocations, a fork split's rewind, a full resync's data and commit, a purge): they change
    /// the committed state in their own step and a stream that carries one is refused.
    /// </summary>
    public static bool IsStreamed(EntryKind kind) =>
        kind is not (EntryKind.Relocation or EntryKind.Rewind or EntryKind.ResyncData or EntryKind.ResyncCommit or EntryKind.Purge);

    /// <summary>
    /// The next whole, verified entry, the clean end of the stream, or why it is bad. Failures of the source itself
    /// (I/O, cancellation) are thrown.
    /// </summary>
    public async Task<StreamedEntry> ReadAsync(CancellationToken ct)
    {
        var index = Index;
        var got = await source.ReadAtLeastAsync(_header, _header.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (got == 0) return StreamedEntry.End;
        if (got < _header.Length) return StreamedEntry.Bad($"entry {index}: the stream ends inside an entry header");
        if (!EntryHeader.TryParse(_header, out var h, out var perr)) return StreamedEntry.Bad($"entry {index}: {perr}");
        if (!IsStreamed(h.Kind)) return StreamedEntry.Bad($"entry {index}: {h.Kind.ToString().ToLowerInvariant()} entries are never streamed");
        if (refuse?.Invoke(h) is { } why) return new StreamedEntry(null, default, why, IsRefused: true);
        var buf = EntryCodec.Allocate(h.StoredCount);
        try
        {
            _header.CopyTo(buf.Span);
            var rest = buf.Span.Length - _header.Length;
            if (await source.ReadAtLeastAsync(buf.Array.AsMemory(_header.Length, rest), rest, throwOnEndOfStream: false, ct).ConfigureAwait(false) < rest)
            { buf.Dispose(); return StreamedEntry.Bad($"entry {index}: the stream ends inside the entry"); }
            var bad = EntryCodec.Verify(buf.Span, out _);
            if (bad is not null) { buf.Dispose(); return StreamedEntry.Bad($"entry {index} (lsn {h.Lsn}): {bad}"); }
            Index = index + 1;
            return new StreamedEntry(buf, h, null);
        }
        catch { buf.Dispose(); throw; }
    }
}
