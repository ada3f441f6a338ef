// What the entry reader hands the apply loop: one whole, verified entry of a stream, the stream's clean end, or why it
// stops there.
using CloudFs.BlockDevice.Format;

namespace CloudFs.BlockDevice.Streams;

/// <summary>
/// A verified entry (<paramref name="Buffer"/> set; the receiver disposes it), the clean end of the stream (nothing
/// set), or why the stream stops at this entry (<paramref name="Error"/>; <paramref name="IsRefused"/> when it was
/// refused rather than found bad).
/// </summary>
internal readonly record struct StreamedEntry(EntryBuffer? Buffer, EntryHeader Header, string? Error, bool IsRefused = false)
{
    public static StreamedEntry End => default;

    public bool IsEnd => Buffer is null && Error is null;

    public static StreamedEntry Bad(string error) => new(null, default, error);
}
