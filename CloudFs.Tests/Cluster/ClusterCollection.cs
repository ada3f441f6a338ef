// Cluster tests run alone: several nodes, their failure detectors and the failover deadlines are measured on a
// machine that is not also running the rest of the suite (which would stall heartbeats on 2 cores).
namespace CloudFs.Tests.Cluster;

[CollectionDefinition(nameof(ClusterCollection), DisableParallelization = true)]
public sealed class ClusterCollection;
