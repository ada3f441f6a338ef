// The directory `cloudfs mount DIR` serves: a FUSE file system written against /dev/fuse (no library) whose root holds
// one symbolic link per volume mounted so far, DIR/<volume id or name> -> the volume's own file system. A lookup of a
// name that is not there yet asks the resolver, which mounts the volume (VolumeMounts) and answers the link's target:
// the volume "appears on first access", as under an automounter. Only lookups, attributes, links and listings are
// answered; everything else is refused (the volumes' own file systems take the reads and writes).
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using static CloudFs.Host.Mount.FuseProtocol;

namespace CloudFs.Host.Mount;

/// <summary>Why a name names no volume, or the volume could not be mounted: the errno the lookup answers.</summary>
internal sealed class MountRefusedException(int errno, string message) : Exception(message)
{
    public int Errno { get; } = errno;
}

/// <param name="resolve">The link target for a name (mounting its volume first), or a <see cref="MountRefusedException"/>.</param>
internal sealed class FuseDirectory(string directory, Func<string, Task<string>> resolve, Action<string> log) : IDisposable
{
    private const int BufferSize = 64 * 1024 + 4096;
    private readonly object _gate = new();
    private readonly Dictionary<string, (ulong Node, byte[] Target)> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<ulong, byte[]> _targets = new();
    private ulong _nextNode = RootNode + 1;
    private int _fd = -1;
    private int _unmounted;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Opens /dev/fuse and mounts it on the directory (root only: mount(2)).</summary>
    public void Mount()
    {
        _fd = Libc.Open("/dev/fuse", Libc.ORdWr | Libc.OCloExec);
        if (_fd < 0) throw new MountRefusedException(Marshal.GetLastPInvokeError(), $"cannot open /dev/fuse ({Marshal.GetLastPInvokeErrorMessage()}): is the fuse module loaded?");
        var options = $"fd={_fd},rootmode=40755,user_id=0,group_id=0,allow_other,default_permissions";
        if (Libc.Mount("cloudfs", directory, "fuse.cloudfs", Libc.MsNoSuid | Libc.MsNoDev, options) != 0)
        {
            var error = Marshal.GetLastPInvokeErrorMessage();
            Libc.Close(_fd);
            _fd = -1;
            throw new MountRefusedException(Marshal.GetLastPInvokeError(), $"cannot mount {directory} ({error}; `cloudfs mount` runs as root)");
        }
    }

    /// <summary>Detaches the directory and ends <see cref="RunAsync"/>. (The kernel keeps a lazily detached FUSE
    /// connection, and the loop's read, while anything still refers to it: the loop's thread is left to it.)</summary>
    public void Unmount()
    {
        if (Interlocked.Exchange(ref _unmounted, 1) == 0) Libc.Umount2(directory, Libc.MntDetach);
        _stopped.TrySetResult();
    }

    /// <summary>Serves requests until the directory is unmounted (umount, fusermount3 -u, or <see cref="Unmount"/>).</summary>
    public Task RunAsync()
    {
        var serving = Task.Factory.StartNew(Serve, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        return Task.WhenAny(serving, _stopped.Task);
    }

    private unsafe void Serve()
    {
        var buffer = new byte[BufferSize];
        while (true)
        {
            nint n;
            fixed (byte* p = buffer) n = Libc.Read(_fd, p, (nuint)buffer.Length);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is Libc.EIntr or Libc.ENoEnt or Libc.EAgain) continue; // interrupted, or a request that was withdrawn
                if (errno != Libc.ENoDev) log($"reading /dev/fuse failed: {Marshal.GetLastPInvokeErrorMessage()}");
                return;
            }
            if (n < InHeaderSize) continue;
            var request = buffer.AsSpan(0, (int)n);
            var opcode = BinaryPrimitives.ReadUInt32LittleEndian(request[4..]);
            var unique = BinaryPrimitives.ReadUInt64LittleEndian(request[8..]);
            var node = BinaryPrimitives.ReadUInt64LittleEndian(request[16..]);
            var argument = request[InHeaderSize..];
            switch (opcode)
            {
                case Init: ReplyInit(unique, argument); break;
                case Lookup: StartLookup(unique, node, argument); break;
                case GetAttr: ReplyAttr(unique, node); break;
                case ReadLink: ReplyReadLink(unique, node); break;
                case OpenDir: Reply(unique, node == RootNode ? 0 : ENotDir, new byte[OpenOutSize]); break;
                case ReadDir: ReplyReadDir(unique, node, argument); break;
                case ReleaseDir or FsyncDir or Access: Reply(unique, 0, []); break;
                case StatFs: Reply(unique, 0, StatFsOut()); break;
                case Forget or BatchForget or Interrupt: break; // no reply
                case Destroy: Reply(unique, 0, []); return;
                default: Reply(unique, ENoSys, []); break;
            }
        }
    }

    private void ReplyInit(ulong unique, ReadOnlySpan<byte> argument)
    {
        var major = BinaryPrimitives.ReadUInt32LittleEndian(argument);
        var minor = BinaryPrimitives.ReadUInt32LittleEndian(argument[4..]);
        if (major != Major) { Reply(unique, EInval, []); return; }
        var answer = new byte[InitOutSize];
        BinaryPrimitives.WriteUInt32LittleEndian(answer, Major);
        BinaryPrimitives.WriteUInt32LittleEndian(answer.AsSpan(4), Math.Min(minor, Minor));
        BinaryPrimitives.WriteUInt32LittleEndian(answer.AsSpan(8), 0); // max_readahead
        BinaryPrimitives.WriteUInt32LittleEndian(answer.AsSpan(12), 0); // flags: nothing asked for
        BinaryPrimitives.WriteUInt16LittleEndian(answer.AsSpan(16), 16); // max_background
        BinaryPrimitives.WriteUInt16LittleEndian(answer.AsSpan(18), 12); // congestion_threshold
        BinaryPrimitives.WriteUInt32LittleEndian(answer.AsSpan(20), 4096); // max_write (nothing is written here)
        BinaryPrimitives.WriteUInt32LittleEndian(answer.AsSpan(24), 1); // time_gran
        Reply(unique, 0, answer);
    }

    private void StartLookup(ulong unique, ulong parent, ReadOnlySpan<byte> argument)
    {
        var end = argument.IndexOf((byte)0);
        var name = Encoding.UTF8.GetString(end < 0 ? argument : argument[..end]);
        if (parent != RootNode) { Reply(unique, ENoEnt, []); return; }
        lock (_gate)
        {
            if (_byName.TryGetValue(name, out var known)) { Reply(unique, 0, EntryOut(known.Node, known.Target)); return; }
        }
        // Mounting a volume takes seconds: answered when done, while other requests are served.
        _ = Task.Run(async () =>
        {
            try
            {
                var target = Encoding.UTF8.GetBytes(await resolve(name).ConfigureAwait(false));
                ulong node;
                lock (_gate)
                {
                    if (_byName.TryGetValue(name, out var known)) node = known.Node;
                    else
                    {
                        node = _nextNode++;
                        _byName[name] = (node, target);
                        _targets[node] = target;
                    }
                }
                Reply(unique, 0, EntryOut(node, target));
            }
            catch (MountRefusedException e)
            {
                if (e.Errno != ENoEnt) log(e.Message);
                Reply(unique, e.Errno, []);
            }
            catch (Exception e)
            {
                log($"{name}: {e.Message}");
                Reply(unique, EIo, []);
            }
        });
    }

    private void ReplyAttr(ulong unique, ulong node)
    {
        var answer = new byte[AttrOutSize];
        BinaryPrimitives.WriteUInt64LittleEndian(answer, 1); // attr_valid: 1 s
        if (node == RootNode) WriteAttr(answer.AsSpan(16), RootNode, null);
        else
        {
            byte[]? target;
            lock (_gate) _targets.TryGetValue(node, out target);
            if (target is null) { Reply(unique, ENoEnt, []); return; }
            WriteAttr(answer.AsSpan(16), node, target);
        }
        Reply(unique, 0, answer);
    }

    private void ReplyReadLink(ulong unique, ulong node)
    {
        byte[]? target;
        lock (_gate) _targets.TryGetValue(node, out target);
        if (target is null) Reply(unique, EInval, []);
        else Reply(unique, 0, target);
    }

    private void ReplyReadDir(ulong unique, ulong node, ReadOnlySpan<byte> argument)
    {
        if (node != RootNode) { Reply(unique, ENotDir, []); return; }
        // fuse_read_in: fh, offset, size, ...
        var offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(argument[8..]);
        var size = (int)BinaryPrimitives.ReadUInt32LittleEndian(argument[16..]);
        var entries = new List<(ulong Node, string Name, uint Type)> { (RootNode, ".", DirentTypeDirectory), (RootNode, "..", DirentTypeDirectory) };
        lock (_gate) entries.AddRange(_byName.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => (e.Value.Node, e.Key, DirentTypeSymlink)));
        var answer = new List<byte>();
        for (var i = (int)Math.Max(0, offset); i < entries.Count; i++)
        {
            var name = Encoding.UTF8.GetBytes(entries[i].Name);
            var length = (24 + name.Length + 7) & ~7;
            if (answer.Count + length > size) break;
            var dirent = new byte[length];
            BinaryPrimitives.WriteUInt64LittleEndian(dirent, entries[i].Node);
            BinaryPrimitives.WriteUInt64LittleEndian(dirent.AsSpan(8), (ulong)(i + 1)); // where the next read starts
            BinaryPrimitives.WriteUInt32LittleEndian(dirent.AsSpan(16), (uint)name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(dirent.AsSpan(20), entries[i].Type);
            name.CopyTo(dirent, 24);
            answer.AddRange(dirent);
        }
        Reply(unique, 0, answer.ToArray());
    }

    private static byte[] EntryOut(ulong node, byte[] target)
    {
        var answer = new byte[EntryOutSize];
        BinaryPrimitives.WriteUInt64LittleEndian(answer, node);
        BinaryPrimitives.WriteUInt64LittleEndian(answer.AsSpan(16), 3600); // entry_valid: the link stays while DIR is mounted
        BinaryPrimitives.WriteUInt64LittleEndian(answer.AsSpan(24), 3600); // attr_valid
        WriteAttr(answer.AsSpan(40), node, target);
        return answer;
    }

    /// <param name="target">Null: the root directory; otherwise a link to it.</param>
    private static void WriteAttr(Span<byte> attr, ulong node, byte[]? target)
    {
        var now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        BinaryPrimitives.WriteUInt64LittleEndian(attr, node);
        BinaryPrimitives.WriteUInt64LittleEndian(attr[8..], (ulong)(target?.Length ?? 0));
        BinaryPrimitives.WriteUInt64LittleEndian(attr[24..], now); // atime
        BinaryPrimitives.WriteUInt64LittleEndian(attr[32..], now); // mtime
        BinaryPrimitives.WriteUInt64LittleEndian(attr[40..], now); // ctime
        BinaryPrimitives.WriteUInt32LittleEndian(attr[60..], target is null ? ModeDirectory | 0x1ED : ModeSymlink | 0x1FF); // 0755, 0777
        BinaryPrimitives.WriteUInt32LittleEndian(attr[64..], target is null ? 2u : 1u); // nlink
        BinaryPrimitives.WriteUInt32LittleEndian(attr[80..], 4096); // blksize
    }

    private static byte[] StatFsOut()
    {
        var answer = new byte[StatFsOutSize];
        BinaryPrimitives.WriteUInt32LittleEndian(answer.AsSpan(40), 4096); // bsize
        BinaryPrimitives.WriteUInt32LittleEndian(answer.AsSpan(44), 255); // namelen
        BinaryPrimitives.WriteUInt32LittleEndian(answer.AsSpan(48), 4096); // frsize
        return answer;
    }

    private unsafe void Reply(ulong unique, int errno, ReadOnlySpan<byte> answer)
    {
        var length = OutHeaderSize + (errno == 0 ? answer.Length : 0);
        var message = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)length);
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(4), -errno);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), unique);
        if (errno == 0) answer.CopyTo(message.AsSpan(OutHeaderSize));
        // One write per reply (the kernel takes each whole); ENOENT: the request was interrupted meanwhile.
        fixed (byte* p = message) Libc.Write(_fd, p, (nuint)length);
    }

    public void Dispose()
    {
        Unmount();
        if (_fd >= 0) Libc.Close(_fd);
        _fd = -1;
    }
}
