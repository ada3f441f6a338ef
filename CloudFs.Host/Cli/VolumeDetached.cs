// The answer of POST /volumes/VOLUME/detach (`cloudfs detach --json`): the volume's id and who held its read-write
// attachment until then (null: nobody did).
namespace CloudFs.Host.Cli;

internal sealed record VolumeDetached(string Volume, string? Detached);
