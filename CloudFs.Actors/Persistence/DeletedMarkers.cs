// The journal's DeleteMessagesTo markers: one tiny file per persistence id next to the device. The log itself is
// never rewritten for a delete; replay starts after the marker instead.
using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace CloudFs.Actors.Persistence;

public sealed class DeletedMarkers(string directory)
{
    private readonly ConcurrentDictionary<string, long> _cache = new(StringComparer.Ordinal);
    private readonly Lock _writeLock = new();

    public string Directory { get; } = directory;

    /// <summary>The highest sequence number deleted for <paramref name="persistenceId"/> (0: none).</summary>
    public long Get(string persistenceId) => _cache.GetOrAdd(persistenceId, Load);

    /// <summary>Raises the marker (never lowers it) and makes it durable (write to a temp file, fsync, rename).</summary>
    public void Raise(string persistenceId, long toSequenceNr)
    {
        lock (_writeLock)
        {
            if (toSequenceNr <= Get(persistenceId)) return;
            System.IO.Directory.CreateDirectory(Directory);
            var path = PathOf(persistenceId);
            var temp = path + ".tmp";
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(bytes, toSequenceNr);
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                file.Write(bytes);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            _cache[persistenceId] = toSequenceNr;
        }
    }

    private long Load(string persistenceId)
    {
        var path = PathOf(persistenceId);
        if (!File.Exists(path)) return 0;
        var bytes = File.ReadAllBytes(path);
        // A marker of the wrong size was not written by us: deleting nothing is the safe reading.
        return bytes.Length == 8 ? Math.Max(0, BinaryPrimitives.ReadInt64LittleEndian(bytes)) : 0;
    }

    // Persistence ids here are 40 hex characters; anything else never reaches the file system.
    private string PathOf(string persistenceId) =>
        Path.Combine(Directory, persistenceId.All(char.IsAsciiHexDigit) ? persistenceId + ".deleted"
            : throw new ArgumentException($"'{persistenceId}' is not a volume id"));
}
