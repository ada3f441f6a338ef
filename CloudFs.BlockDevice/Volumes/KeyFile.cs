// The host-private key file: volume id → secret view-stamp, this host's ECDH private key, and the secret shares this
// host holds for other primaries. The only place any of them is kept (never in the log or a stream). Durable before
// whatever depends on it is acknowledged: a new volume's secret is one appended line (fdatasync shared by the creates
// that append together: a create costs the same however many volumes the host holds); everything else rewrites the
// file atomically (temp file, fsync, rename, directory fsync), which also folds the appended lines in. A torn last
// line (a crash during an append, never acknowledged) is ignored when the file is read.
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using CloudFs.BlockDevice.Device;

namespace CloudFs.BlockDevice.Volumes;

// The engine runs on Linux only (O_DIRECT, flock): the Unix file modes are always available.
#pragma warning disable CA1416

internal sealed class KeyFile : IDisposable
{
    private const string HostKeyTag = "host-key";
    private const string ShareTag = "share";

    private readonly string _path;
    private readonly Dictionary<Id160, byte[]> _secrets = new();
    private readonly Dictionary<Id160, (Id160 View, SecretShare Share)> _shares = new();
    private HostKey? _hostKey;
    private readonly object _gate = new();
    // Appends: the open file (null until the first, and after each rewrite), how many lines were appended, how many of
    // those are durable. _syncGate is taken after _gate, never the other way round.
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _appender;
    private long _appendAt;
    private long _appended;
    private long _synced;
    private readonly object _syncGate = new();

    private KeyFile(string path) => _path = path;

    public string Path => _path;

    public static KeyFile Load(string path)
    {
        var k = new KeyFile(System.IO.Path.GetFullPath(path));
        if (!File.Exists(k._path)) return k;
        var n = 0;
        var lines = File.ReadAllText(k._path).Split('\n');
        // The text after the last newline is empty, or an append that a crash cut short (never acknowledged).
        foreach (var line in lines[..^1])
        {
            n++;
            if (line.Length == 0 || line[0] == '#') continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (!k.TryParseLine(parts))
                throw new DeviceException($"key file {k._path} line {n} is malformed");
        }
        // A torn append is dropped from the file too, before anything is appended after it.
        if (lines[^1].Length > 0) lock (k._gate) k.Save();
        return k;
    }

    private bool TryParseLine(string[] parts)
    {
        if (parts.Length == 2 && parts[0] == HostKeyTag)
        {
            if (_hostKey is not null || !TryHex(parts[1], -1, out var der)) return false;
            try { _hostKey = HostKey.FromPkcs8(der); }
            catch (CryptographicException) { return false; }
            return true;
        }
        if (parts.Length == 4 && parts[0] == ShareTag)
        {
            if (!Id160.TryParse(parts[1], out var vol) || !Id160.TryParse(parts[2], out var view) || !TryHex(parts[3], SecretShare.Size, out var b)) return false;
            if (SecretShare.Decode(b) is not { } share) return false;
            _shares[vol] = (view, share);
            return true;
        }
        if (parts.Length == 2 && Id160.TryParse(parts[0], out var volume) && TryHex(parts[1], VersionChain.SecretSize, out var secret))
        {
            _secrets[volume] = secret;
            return true;
        }
        return false;
    }

    private static bool TryHex(string text, int bytes, out byte[] value)
    {
        value = [];
        if (text.Length % 2 != 0 || (bytes >= 0 && text.Length != 2 * bytes) || text.Length == 0) return false;
        try { value = Convert.FromHexString(text); return true; }
        catch (FormatException) { return false; }
    }

    public byte[]? Get(Id160 volume) { lock (_gate) return _secrets.GetValueOrDefault(volume); }

    public void Dispose()
    {
        lock (_gate)
        lock (_syncGate)
        {
            _appender?.Dispose();
            _appender = null;
        }
    }

    /// <summary>Keeps <paramref name="volume"/>'s secret (replacing an older one), durably on return.</summary>
    public void Add(Id160 volume, byte[] secret)
    {
        long line;
        byte[]? old;
        lock (_gate)
        {
            old = _secrets.GetValueOrDefault(volume);
            _secrets[volume] = secret;
            if (!File.Exists(_path))
            {
                // The first line of all: the file and its header are made by a rewrite.
                SaveOrUndo(() => Undo(volume, secret, old));
                return;
            }
            try
            {
                if (_appender is null)
                {
                    _appender = File.OpenHandle(_path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
                    _appendAt = RandomAccess.GetLength(_appender);
                }
                var bytes = Encoding.ASCII.GetBytes($"{volume} {Convert.ToHexStringLower(secret)}\n");
                RandomAccess.Write(_appender, bytes, _appendAt);
                _appendAt += bytes.Length;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Undo(volume, secret, old);
                throw new DeviceException($"cannot append to the key file {_path}: {e.Message}");
            }
            line = ++_appended;
        }
        try { SyncAppends(line); }
        catch
        {
            lock (_gate) Undo(volume, secret, old);
            throw;
        }
    }

    private void Undo(Id160 volume, byte[] secret, byte[]? old)
    {
        if (!ReferenceEquals(_secrets.GetValueOrDefault(volume), secret)) return;
        if (old is null) _secrets.Remove(volume); else _secrets[volume] = old;
    }

    /// <summary>Makes appended lines up to <paramref name="line"/> durable: one fdatasync for every line appended so far,
    /// so appends that wait together share it.</summary>
    private void SyncAppends(long line)
    {
        lock (_syncGate)
        {
            if (_synced >= line) return;
            var upTo = Interlocked.Read(ref _appended);
            var fd = (int)_appender!.DangerousGetHandle();
            if (NativeMethods.Fdatasync(fd) != 0)
                throw new DeviceException($"cannot sync the key file {_path}: {NativeMethods.Describe(Marshal.GetLastPInvokeError())}");
            _synced = upTo;
        }
    }

    /// <summary>This host's ECDH key, generated and made durable on first use, the same across restarts.</summary>
    public HostKey HostKey
    {
        get
        {
            lock (_gate)
            {
                if (_hostKey is not null) return _hostKey;
                var key = HostKey.Generate();
                _hostKey = key;
                SaveOrUndo(() => { _hostKey = null; key.Dispose(); });
                return key;
            }
        }
    }

    /// <summary>The share this host holds of <paramref name="volume"/>'s secret, and the view it belongs to.</summary>
    public (Id160 View, SecretShare Share)? GetShare(Id160 volume)
    {
        lock (_gate) return _shares.TryGetValue(volume, out var s) ? s : null;
    }

    /// <summary>Keeps (durably, replacing the volume's previous one) the share of <paramref name="volume"/>'s view <paramref name="view"/>.</summary>
    public void PutShare(Id160 volume, Id160 view, SecretShare share)
    {
        lock (_gate)
        {
            var had = _shares.TryGetValue(volume, out var old);
            _shares[volume] = (view, share);
            SaveOrUndo(() => { if (had) _shares[volume] = old; else _shares.Remove(volume); });
        }
    }

    /// <summary>Writes the file; when that fails, undoes the change in memory too, so a restart sees what ran.</summary>
    private void SaveOrUndo(Action undo)
    {
        try { Save(); }
        catch { undo(); throw; }
    }

    private void Save()
    {
        // The rewrite holds every appended line too: once it is in place they are all durable, and appends go to the new file.
        lock (_syncGate)
        {
            _appender?.Dispose();
            _appender = null;
            Rewrite();
            _synced = Interlocked.Read(ref _appended);
        }
    }

    private void Rewrite()
    {
        var text = new StringBuilder("# CloudFS host secrets (host-private, mode 0600): \"host-key PKCS8\", \"VOLUME SECRET\", \"share VOLUME VIEW SHARE\"\n");
        if (_hostKey is not null) text.Append(HostKeyTag).Append(' ').Append(Convert.ToHexStringLower(_hostKey.ExportPkcs8())).Append('\n');
        foreach (var (vol, secret) in _secrets) text.Append($"{vol} {Convert.ToHexStringLower(secret)}\n");
        foreach (var (vol, (view, share)) in _shares) text.Append($"{ShareTag} {vol} {view} {Convert.ToHexStringLower(share.Encode())}\n");
        var tmp = _path + ".tmp";
        using (var fs = new FileStream(tmp, new FileStreamOptions
               {
                   Mode = FileMode.Create, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
        {
            fs.Write(Encoding.ASCII.GetBytes(text.ToString()));
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

    /// <summary>
    /// Forgets a volume's secret (this node no longer extends its chain), rewriting the file atomically like
    /// <see cref="Add"/>: durable on return. Nothing to do when the secret is not held.
    /// </summary>
    public void Remove(Id160 volume)
    {
        lock (_gate)
        {
            if (!_secrets.Remove(volume, out var removed)) return;
            SaveOrUndo(() => _secrets[volume] = removed);
        }
    }

    /// <summary>Forgets everything held for a volume (its secret and its share), durably: the volume was purged here.</summary>
    public void Forget(Id160 volume)
    {
        lock (_gate)
        {
            var hadSecret = _secrets.Remove(volume, out var secret);
            var hadShare = _shares.Remove(volume, out var share);
            if (!hadSecret && !hadShare) return;
            SaveOrUndo(() =>
            {
                if (hadSecret) _secrets[volume] = secret!;
                if (hadShare) _shares[volume] = share;
            });
        }
    }

}
