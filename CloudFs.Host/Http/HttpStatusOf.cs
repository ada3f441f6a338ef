// One table from the engine's errors to HTTP statuses, so every endpoint answers the same failure the same way.
using CloudFs.BlockDevice;
using Microsoft.AspNetCore.Http;

namespace CloudFs.Host.Http;

internal static class HttpStatusOf
{
    public static int Status(Exception e) => e switch
    {
        VolumeNotFoundException => StatusCodes.Status404NotFound,
        UnknownVersionException => StatusCodes.Status404NotFound,
        VersionCompactedException => StatusCodes.Status410Gone,
        InvalidRangeException => StatusCodes.Status416RangeNotSatisfiable,
        LogFullException => StatusCodes.Status507InsufficientStorage,
        NotPrimaryException => StatusCodes.Status409Conflict,
        VolumeInTrashException => StatusCodes.Status409Conflict,
        EntryRejectedException r => r.IsFork ? StatusCodes.Status409Conflict : StatusCodes.Status400BadRequest,
        DataCorruptionException => StatusCodes.Status500InternalServerError,
        DeviceException => StatusCodes.Status503ServiceUnavailable,
        CloudFs.Actors.Node.NodeUnavailableException => StatusCodes.Status503ServiceUnavailable,
        BadHttpRequestException b => b.StatusCode,
        TimeoutException => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };
}
