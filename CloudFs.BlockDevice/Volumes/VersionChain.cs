// The paper's hash chain: id_k = H(s ‖ id_{k-1} ‖ digest_k), version_k = H(id_k); only the holder of s can extend it.
namespace CloudFs.BlockDevice.Volumes;

internal static class VersionChain
{
    public const int SecretSize = 32;

    public static Id160 NextId(ReadOnlySpan<byte> secret, Id160 parentId, Id160 digest)
    {
        Span<byte> buf = stackalloc byte[SecretSize + 2 * Id160.Size];
        secret.CopyTo(buf);
        parentId.WriteTo(buf[SecretSize..]);
        digest.WriteTo(buf[(SecretSize + Id160.Size)..]);
        return Id160.Hash(buf);
    }

    public static Id160 PublicOf(Id160 id)
    {
        Span<byte> b = stackalloc byte[Id160.Size];
        id.WriteTo(b);
        return Id160.Hash(b);
    }

    /// <summary>The first 8 bytes of a version, the key of the per-volume version → lsn map.</summary>
    public static ulong Prefix(Id160 version)
    {
        Span<byte> b = stackalloc byte[Id160.Size];
        version.WriteTo(b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(b);
    }
}
