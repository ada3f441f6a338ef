// NBD error numbers and the mapping from the engine's exceptions to them (SPEC: "the NBD error the protocol names").
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

internal static class NbdErrors
{
    public const uint EPERM = 1;
    public const uint EIO = 5;
    public const uint ENOMEM = 12;
    public const uint EINVAL = 22;
    public const uint ENOSPC = 28;
    public const uint EOVERFLOW = 75;
    public const uint ENOTSUP = 95;
    public const uint ESHUTDOWN = 108;

    /// <summary>
    /// The error a failed gateway call is answered with. Unexpected exceptions are EIO and are logged, since they
    /// mean a bug or an infrastructure failure the operator must see; the expected ones are the client's business.
    /// </summary>
    public static uint FromException(Exception error, Action<string>? log, string context)
    {
        if (error is AggregateException { InnerExceptions.Count: 1 } aggregate) error = aggregate.InnerExceptions[0];
        switch (error)
        {
            case InvalidRangeException: return EINVAL;
            case LogFullException: return ENOSPC;
            case NotPrimaryException: return EPERM;
            case VolumeInTrashException: return EPERM;
            // A superseded read-write attachment (its connection logs why, once).
            case AttachmentFencedException: return EPERM;
            case DataCorruptionException:
                log?.Invoke($"nbd: {context}: {error.Message}");
                return EIO;
            case DeviceException:
                // The log device of the volume's primary failed: the node said so once, at ERROR; no line per request.
                return EIO;
            case VolumeNotFoundException:
                // The volume went away under an open connection (deleted or moved): nothing on it can succeed.
                log?.Invoke($"nbd: {context}: {error.Message}");
                return EIO;
            case OperationCanceledException: return ESHUTDOWN;
            default:
                log?.Invoke($"nbd: {context}: unexpected {error.GetType().Name}: {error.Message}");
                return EIO;
        }
    }

    /// <summary>A short human message sent with a structured error chunk.</summary>
    public static string Describe(uint error) => error switch
    {
        EPERM => "operation not permitted: this node is not the volume's primary or the export is read-only",
        EIO => "input/output error",
        EINVAL => "invalid request",
        ENOSPC => "no space left in the log",
        EOVERFLOW => "request too large",
        ENOTSUP => "operation not supported",
        ESHUTDOWN => "server is shutting down",
        _ => "error",
    };
}
