namespace CloudFs.BlockDevice.Device;

/// <summary>
/// The page-aligned device range that holds the bytes [offset, offset+length): O_DIRECT reads whole pages, so a read
/// of a run starts at <see cref="Offset"/>, reads <see cref="Length"/> bytes, and finds the run at <see cref="Lead"/>.
/// </summary>
internal readonly record struct PageSpan(long Offset, int Lead, int Length)
{
    private const int Page = AlignedBuffer.Alignment;

    public static PageSpan Around(long offset, int length)
    {
        var aligned = offset & ~(long)(Page - 1);
        var lead = (int)(offset - aligned);
        return new PageSpan(aligned, lead, (lead + length + Page - 1) & ~(Page - 1));
    }
}
