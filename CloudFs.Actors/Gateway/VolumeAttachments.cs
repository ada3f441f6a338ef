// The read-write attachments this node serves (NBD connections that chose a writable export), per volume: `cloudfs rm`
// asks every node (CountAttachments) and refuses a volume some client has attached, unless forced.
using System.Collections.Concurrent;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Gateway;

public sealed class VolumeAttachments
{
    private readonly ConcurrentDictionary<Id160, int> _readWrite = new();

    /// <summary>Counts one read-write attachment of <paramref name="volume"/> until the returned handle is disposed.</summary>
    public IDisposable AttachReadWrite(Id160 volume)
    {
        _readWrite.AddOrUpdate(volume, 1, (_, n) => n + 1);
        return new Attachment(this, volume);
    }

    /// <summary>How many read-write attachments of <paramref name="volume"/> this node serves now.</summary>
    public int ReadWrite(Id160 volume) => _readWrite.TryGetValue(volume, out var n) ? n : 0;

    private void Detach(Id160 volume)
    {
        while (true)
        {
            var n = _readWrite[volume];
            if (n == 1 ? _readWrite.TryRemove(KeyValuePair.Create(volume, 1)) : _readWrite.TryUpdate(volume, n - 1, n)) return;
        }
    }

    private sealed class Attachment(VolumeAttachments owner, Id160 volume) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) owner.Detach(volume);
        }
    }
}
