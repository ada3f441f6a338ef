// A volume's name: given at creation (`cloudfs newdisk --name`), kept in its creation entry, accepted wherever a volume
// id is. A name never looks like an id, so "id or name" is never ambiguous.
using System.Text;

namespace CloudFs.BlockDevice.Volumes;

public static class VolumeName
{
    /// <summary>Longest name in bytes: it shares the creation entry's 256-byte payload with up to 10 replica ids.</summary>
    public const int MaxLength = 40;

    /// <summary>Null when <paramref name="name"/> is a valid volume name; otherwise one sentence saying why not.</summary>
    public static string? Check(string name)
    {
        if (name.Length == 0) return "a volume name cannot be empty";
        if (name.Length > MaxLength) return $"a volume name has at most {MaxLength} characters, not {name.Length}";
        if (!IsLetterOrDigit(name[0])) return $"a volume name starts with a letter or a digit, not '{name[0]}'";
        foreach (var c in name)
            if (!IsLetterOrDigit(c) && c is not ('.' or '_' or '-'))
                return $"a volume name holds only letters, digits, '.', '_' and '-', not '{c}'";
        if (Id160.TryParse(name, out _)) return $"'{name}' looks like a volume id (40 hex characters); choose another name";
        return null;
    }

    private static bool IsLetterOrDigit(char c) => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9';

    internal static byte[] Encode(string name) => Encoding.ASCII.GetBytes(name);

    /// <summary>The name in <paramref name="bytes"/>, or null when they are not a valid name.</summary>
    internal static string? Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length is 0 or > MaxLength || bytes.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E)) return null;
        var name = Encoding.ASCII.GetString(bytes);
        return Check(name) is null ? name : null;
    }
}
