// Cluster tests run alone: several nodes and their failure detectors on a machine that is not also running the rest of
// the suite (which would stall heartbeats on 2 cores and down members that are only slow).
namespace CloudFs.Tests.Cluster;

[CollectionDefinition(nameof(ClusterCollection), DisableParallelization = true)]
public sealed class ClusterCollection;
