// The volumes `cloudfs mount DIR` has mounted, by volume id: the resolver behind DIR's lookups. A name (a volume's id
// or name) is asked of the contacted node; a volume is mounted once however many names and lookups reach it.
using CloudFs.Actors.Management;
using CloudFs.BlockDevice;
using CloudFs.BlockDevice.Volumes;

namespace CloudFs.Host.Mount;

/// <param name="find">The volume a name designates, as the node answers it (null: none).</param>
/// <param name="exportOf">The NBD export of a volume id, through the contacted node.</param>
internal sealed class VolumeMounts(Func<string, Task<VolumeSummary?>> find, Func<string, VolumeExport> exportOf, string staging, string locks, Action<string> log)
    : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Task<VolumeMount>> _mounts = new(StringComparer.Ordinal);
    private bool _stopping;

    /// <summary>The directory DIR/<paramref name="name"/> links to, mounting the volume on first access.</summary>
    public async Task<string> ResolveAsync(string name)
    {
        // Shells and file managers probe for many names; only a volume's id or a volume name is asked of the node.
        if (!Id160.TryParse(name, out _) && VolumeName.Check(name) is not null) throw NoSuch(name);
        var volume = await find(name).ConfigureAwait(false);
        if (volume is null || volume.IsTrashed) throw NoSuch(name);
        Task<VolumeMount> mount;
        lock (_gate)
        {
            if (_stopping) throw new MountRefusedException(FuseProtocol.ENoEnt, "stopping");
            if (!_mounts.TryGetValue(volume.Id, out mount!))
            {
                log($"mounting volume {volume.Id}{(volume.Name is { } n ? $" ({n})" : "")}");
                _mounts[volume.Id] = mount = VolumeMount.StartAsync(exportOf(volume.Id), staging, locks, log);
            }
        }
        try
        {
            var mounted = await mount.ConfigureAwait(false);
            return mounted.FileSystem;
        }
        catch
        {
            // The next access tries again (e.g. once the other holder has detached).
            lock (_gate) if (_mounts.TryGetValue(volume.Id, out var current) && current == mount) _mounts.Remove(volume.Id);
            throw;
        }
    }

    private static MountRefusedException NoSuch(string name) => new(FuseProtocol.ENoEnt, $"no volume named '{name}'");

    /// <summary>Unmounts every volume, each flushed to its primary.</summary>
    public async ValueTask DisposeAsync()
    {
        Task<VolumeMount>[] mounts;
        lock (_gate)
        {
            _stopping = true;
            mounts = _mounts.Values.ToArray();
            _mounts.Clear();
        }
        foreach (var mount in mounts)
        {
            VolumeMount mounted;
            try { mounted = await mount.ConfigureAwait(false); }
            catch (Exception) { continue; } // never mounted: it cleaned up after itself
            await mounted.DisposeAsync().ConfigureAwait(false);
            log($"unmounted volume {Path.GetFileName(Path.GetDirectoryName(mounted.FileSystem))}");
        }
    }
}
