// The same model property on a real block device (a loop device): O_DIRECT, O_EXCL pinning, size from the kernel.
using CloudFs.BlockDevice;
using FsCheck;
using FsCheck.Fluent;

namespace CloudFs.Tests.Engine;

public sealed class LoopDeviceTests
{
    private static LogStoreOptions Options(LoopDevice dev) => new()
    {
        Path = dev.Path,
        KeyFilePath = Path.Combine(dev.Dir, "keys"),
        SegmentSize = 1 << 20,
        CheckpointBytes = long.MaxValue,
        CheckpointInterval = TimeSpan.FromHours(1),
        CompactionThreshold = 0.3,
    };

    [LoopDeviceFact]
    public async Task A_loop_device_is_driven_with_direct_io_and_pinned_exclusively()
    {
        using var dev = new LoopDevice(64 << 20);
        await using var s = LogStore.Open(Options(dev));
        Assert.True(s.IsDirectIo);
        Assert.True(s.Usage.TotalSegments >= 50);
        var ex = Assert.Throws<DeviceException>(() => LogStore.Open(Options(dev)));
        Assert.Contains("held", ex.Message);
        Assert.Throws<DeviceException>(() => LogStore.Nuke(dev.Path));
        Assert.Throws<DeviceException>(() => LogStore.Open(Options(dev) with { KeyFilePath = null }));
    }

    [LoopDeviceFact]
    public void Everything_flushed_reads_back_on_a_block_device()
    {
        var prop = Prop.ForAll(Arb.From(ModelScenario.Ops(volumeBlocks: 512, maxBlocks: 128, maxOps: 40)), ops =>
        {
            using var dev = new LoopDevice(64 << 20);
            var scenario = new ModelScenario(() => Options(dev), dev.Poke, 512);
            scenario.RunAsync(ops).GetAwaiter().GetResult();
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(8), prop);
    }
}
