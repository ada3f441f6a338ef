// A certificate directory that cannot be used, or a peer certificate the cluster does not trust; the message is the
// one sentence an operator (or a refused peer's log line) needs.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Security;

public sealed class CertificateException(string message, Exception? inner = null) : CloudFsException(message, inner);
