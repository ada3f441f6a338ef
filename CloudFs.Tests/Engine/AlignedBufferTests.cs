// Aligned buffers for O_DIRECT: small ones from malloc, from 128 KiB up mapped pages of their own (given back to the
// system when freed): both zeroed, 4 KiB aligned, whole pages, and usable as Memory.
using CloudFs.BlockDevice.Device;

namespace CloudFs.Tests.Engine;

public sealed class AlignedBufferTests
{
    [Theory]
    [InlineData(4096)]
    [InlineData(AlignedBuffer.MappedFrom - 4096)]
    [InlineData(AlignedBuffer.MappedFrom)]
    [InlineData(8 << 20)]
    public unsafe void A_buffer_is_zeroed_page_aligned_and_writable_whichever_way_it_is_allocated(int length)
    {
        for (var round = 0; round < 3; round++)
        {
            using var buffer = new AlignedBuffer(length);
            fixed (byte* p = buffer.Span) Assert.Equal(0, (long)p % AlignedBuffer.Alignment);
            Assert.Equal(length, buffer.Span.Length);
            Assert.False(buffer.Span.ContainsAnyExcept((byte)0));
            buffer.Span.Fill((byte)(round + 1));
            Assert.Equal((byte)(round + 1), buffer.Memory.Span[length - 1]);
        }
    }

    [Fact]
    public void A_pool_keeps_at_most_its_bound_and_hands_kept_buffers_out_again()
    {
        using var pool = new AlignedBufferPool(4096, maxPooled: 2);
        var rented = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToArray();
        Assert.Equal(3, pool.Created);
        foreach (var b in rented) pool.Return(b);   // the third goes back to the system
        var again = Enumerable.Range(0, 3).Select(_ => pool.Rent()).ToArray();
        Assert.Equal(4, pool.Created);
        Assert.Equal(2, again.Count(b => rented.Contains(b)));
        foreach (var b in again) pool.Return(b);
    }

    [Fact]
    public void A_length_that_is_not_whole_pages_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedBuffer(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedBuffer(AlignedBuffer.MappedFrom + 512));
    }
}
