// A node's start (or rejoin) that ended because the cluster downed and removed it while it joined, before it became
// Up: typically a member refused its identity proof (IdentityVerifier). The message is the one sentence the operator needs.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

public sealed class ClusterJoinRefusedException(string message) : CloudFsException(message);
