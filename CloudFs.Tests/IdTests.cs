using CloudFs.BlockDevice;

namespace CloudFs.Tests;

public class IdTests
{
    [Fact]
    public void An_id_round_trips_through_its_40_hex_characters()
    {
        var id = Id160.Random();
        var text = id.ToString();
        Assert.Equal(40, text.Length);
        Assert.Equal(text.ToLowerInvariant(), text);
        Assert.Equal(id, Id160.Parse(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("xyz")]
    [InlineData("0123456789012345678901234567890123456789ab")]
    [InlineData("g123456789012345678901234567890123456789")]
    public void A_malformed_id_is_refused(string text) => Assert.False(Id160.TryParse(text, out _));

    [Fact]
    public void Hash_is_sha256_truncated_to_160_bits()
    {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a3", Id160.Hash("abc"u8).ToString());
    }
}
