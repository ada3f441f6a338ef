// The host-private key file: volume id → secret view-stamp, the only place a secret is kept (never in the log or a stream).
// Rewritten atomically (temp file, fsync, rename, directory fsync) before a creation entry is acknowledged.
using System.Runtime.InteropServices;
using CloudFs.BlockDevice.Device;

namespace CloudFs.BlockDevice.Volumes;

// The engine runs on Linux only (O_DIRECT, flock): the Unix file modes are always available.
#pragma warning disable CA1416

internal sealed class KeyFile
{
    private readonly string _path;
    private readonly Dictionary<Id160, byte[]> _secrets = new();
    private readonly object _gate = new();

    private KeyFile(string path) => _path = path;

    public string Path => _path;

    public static KeyFile Load(string path)
    {
        var k = new KeyFile(System.IO.Path.GetFullPath(path));
        if (!File.Exists(k._path)) return k;
        var n = 0;
        foreach (var line in File.ReadAllLines(k._path))
        {
            n++;
            if (line.Length == 0 || line[0] == '#') continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2 || !Id160.TryParse(parts[0], out var vol) || parts[1].Length != 2 * VersionChain.SecretSize)
                throw new DeviceException($"key file {k._path} line {n} is malformed");
            k._secrets[vol] = Convert.FromHexString(parts[1]);
        }
        return k;
    }

    public byte[]? Get(Id160 volume) { lock (_gate) return _secrets.GetValueOrDefault(volume); }

    public void Add(Id160 volume, byte[] secret)
    {
        lock (_gate)
        {
            _secrets[volume] = secret;
            var tmp = _path + ".tmp";
            var text = "# CloudFS volume secrets: volume-id secret-view-stamp (host-private, mode 0600)\n" +
                       string.Concat(_secrets.Select(kv => $"{kv.Key} {Convert.ToHexStringLower(kv.Value)}\n"));
            using (var fs = new FileStream(tmp, new FileStreamOptions
                   {
                       Mode = FileMode.Create, Access = FileAccess.Write,
                       UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                   }))
            {
                fs.Write(System.Text.Encoding.ASCII.GetBytes(text));
                fs.Flush(flushToDisk: true);
            }
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(tmp, _path, overwrite: true);
            var dir = System.IO.Path.GetDirectoryName(_path)!;
            var dfd = NativeMethods.Open(dir, NativeMethods.O_RDONLY | NativeMethods.O_CLOEXEC, 0);
            if (dfd < 0) throw new DeviceException($"cannot open {dir} to sync the key file: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
            try { NativeMethods.Fsync(dfd); }
            finally { NativeMethods.Close(dfd); }
        }
    }

    /// <summary>
    /// Forgets a volume's secret (this node no longer extends its chain), rewriting the file atomically like
    /// <see cref="Add"/>: durable on return. Nothing to do when the secret is not held.
    /// </summary>
    public void Remove(Id160 volume)
    {
        lock (_gate)
        {
            if (!_secrets.ContainsKey(volume)) return;
            var removed = _secrets[volume];
            _secrets.Remove(volume);
            try
            {
                var tmp = _path + ".tmp";
                var text = "# CloudFS volume secrets: volume-id secret-view-stamp (host-private, mode 0600)\n" +
                           string.Concat(_secrets.Select(kv => $"{kv.Key} {Convert.ToHexStringLower(kv.Value)}\n"));
                using (var fs = new FileStream(tmp, new FileStreamOptions
                       {
                           Mode = FileMode.Create, Access = FileAccess.Write,
                           UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                       }))
                {
                    fs.Write(System.Text.Encoding.ASCII.GetBytes(text));
                    fs.Flush(flushToDisk: true);
                }
                File.Move(tmp, _path, overwrite: true);
                var dir = System.IO.Path.GetDirectoryName(_path)!;
                var dfd = NativeMethods.Open(dir, NativeMethods.O_RDONLY | NativeMethods.O_CLOEXEC, 0);
                if (dfd < 0) throw new DeviceException($"cannot open {dir} to sync the key file: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
                try { NativeMethods.Fsync(dfd); }
                finally { NativeMethods.Close(dfd); }
            }
            catch
            {
                // The file still holds it: so must memory, or a restart would differ from what ran.
                _secrets[volume] = removed;
                throw;
            }
        }
    }
}
