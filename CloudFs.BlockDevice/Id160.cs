// A 160-bit identifier (volume, version or host id), written as 40 lower-case hex characters.
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace CloudFs.BlockDevice;

public readonly struct Id160 : IEquatable<Id160>, IComparable<Id160>
{
    public const int Size = 20;
    private readonly ulong _a, _b;
    private readonly uint _c;

    public static readonly Id160 Zero = default;

    public Id160(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Size) throw new ArgumentException("an id is 20 bytes", nameof(bytes));
        _a = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt32BigEndian(bytes[16..]);
    }

    public bool IsZero => _a == 0 && _b == 0 && _c == 0;

    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], _c);
    }

    public byte[] ToArray() { var b = new byte[Size]; WriteTo(b); return b; }

    /// <summary>SHA-256 truncated to 160 bits: the H(...) of the design.</summary>
    public static Id160 Hash(ReadOnlySpan<byte> data)
    {
        Span<byte> full = stackalloc byte[32];
        SHA256.HashData(data, full);
        return new Id160(full);
    }

    public static Id160 Random()
    {
        Span<byte> b = stackalloc byte[Size];
        RandomNumberGenerator.Fill(b);
        return new Id160(b);
    }

    /// <summary>XOR distance (Kademlia), compared as a 160-bit big-endian number.</summary>
    public Id160 Xor(Id160 other)
    {
        Span<byte> x = stackalloc byte[Size], y = stackalloc byte[Size];
        WriteTo(x); other.WriteTo(y);
        for (var i = 0; i < Size; i++) x[i] ^= y[i];
        return new Id160(x);
    }

    public static bool TryParse(string? text, out Id160 id)
    {
        id = default;
        if (text is null || text.Length != 2 * Size) return false;
        Span<byte> b = stackalloc byte[Size];
        foreach (var ch in text)
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))) return false;
        if (Convert.FromHexString(text, b, out _, out var written) != System.Buffers.OperationStatus.Done || written != Size) return false;
        id = new Id160(b);
        return true;
    }

    public static Id160 Parse(string text) =>
        TryParse(text, out var id) ? id : throw new FormatException($"'{text}' is not a 160-bit id (40 hex characters)");

    public override string ToString()
    {
        Span<byte> b = stackalloc byte[Size];
        WriteTo(b);
        return Convert.ToHexStringLower(b);
    }

    public bool Equals(Id160 other) => _a == other._a && _b == other._b && _c == other._c;
    public override bool Equals(object? obj) => obj is Id160 o && Equals(o);
    public override int GetHashCode() => HashCode.Combine(_a, _b, _c);
    public int CompareTo(Id160 other)
    {
        var c = _a.CompareTo(other._a);
        if (c != 0) return c;
        c = _b.CompareTo(other._b);
        return c != 0 ? c : _c.CompareTo(other._c);
    }
    public static bool operator ==(Id160 l, Id160 r) => l.Equals(r);
    public static bool operator !=(Id160 l, Id160 r) => !l.Equals(r);
}
