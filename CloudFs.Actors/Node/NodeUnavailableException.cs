// This node cannot answer now: it is rejoining the cluster as a new member, or stopping. Ask again (or another node).
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Node;

public sealed class NodeUnavailableException(string message, Exception? inner = null) : CloudFsException(message, inner);
