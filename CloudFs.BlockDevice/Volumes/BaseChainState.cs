// What a volume's chain was at its history base, besides the base's index and size: the view in force there, the trash
// state, and the parent and digest of the base's entry. A full resync sent as of the base carries it in its manifest
// (docs/FORMAT.md, "Full resync"), so the new replica holds the volume at the base exactly as the chain had it and the
// entries after the base (view changes, resizes, trash entries) apply there as they did here.
namespace CloudFs.BlockDevice.Volumes;

internal sealed record BaseChainState(long ViewNumber, Id160 View, Id160[] Replicas, long TrashedAtUnixMs, Id160 HeadParent, Id160 HeadDigest)
{
    /// <summary>Under IndexLock: the volume's state at its committed head.</summary>
    public static BaseChainState AtHead(VolumeState v) =>
        new(v.ViewNumber, v.View, v.Replicas, v.TrashedAtUnixMs, v.HeadParent, v.HeadDigest);

    /// <summary>The state after the entry <paramref name="h"/> whose view (as <see cref="VolumeView.After"/> folded it) is <paramref name="view"/>.</summary>
    public static BaseChainState After(VolumeView view, Format.EntryHeader h) =>
        new(view.Number, view.Version, view.Replicas, view.TrashedAtUnixMs, h.Parent, h.Digest);

    /// <summary>The view to fold the entries after the base onto (<see cref="VolumeView.After"/>), at <paramref name="sizeBytes"/>.</summary>
    public VolumeView ToView(long sizeBytes) => new(ViewNumber, View, Replicas) { SizeBytes = sizeBytes, TrashedAtUnixMs = TrashedAtUnixMs };
}
