// A request body copied from a live source (stdin of `cloudfs apply`) and flushed after every read, so that
// entries of a following stream (`cloudfs stream --follow | cloudfs apply`) reach the node at once instead of
// waiting in HttpClient's write buffer for more data.
using System.Buffers;
using System.Net;

namespace CloudFs.Host.Cli;

internal sealed class LiveStreamContent(Stream source, int bufferSize = 1 << 20) : HttpContent
{
    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            int n;
            while ((n = await source.ReadAsync(buffer.AsMemory(0, bufferSize), cancellationToken)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                await stream.FlushAsync(cancellationToken);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
