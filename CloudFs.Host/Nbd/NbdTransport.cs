// The byte stream of one NBD connection and the pipes over it: the socket's stream, then, after NBD_OPT_STARTTLS,
// a TLS stream over the same socket. The handshake and the transmission loop always read and write the current pipes.
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using CloudFs.Actors.Security;

namespace CloudFs.Host.Nbd;

internal sealed class NbdTransport : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _network;
    private SslStream? _tls;

    public NbdTransport(Socket socket)
    {
        _socket = socket;
        _network = new NetworkStream(socket, ownsSocket: true);
        (Reader, Writer) = Pipes(_network);
    }

    public PipeReader Reader { get; private set; }
    public PipeWriter Writer { get; private set; }
    /// <summary>Who the client's certificate names, once TLS is up.</summary>
    public ClusterCertificate? Peer { get; private set; }
    public bool IsTls => _tls is not null;

    private static (PipeReader, PipeWriter) Pipes(Stream stream) => (
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true)),
        PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true)));

    /// <summary>
    /// Runs the TLS handshake as the server, requiring a client certificate of the cluster, and moves the pipes onto
    /// it. The caller has flushed its NBD_REP_ACK. False, with the connection to be closed, when the client already
    /// sent more (it must wait for the ACK; those bytes could not be part of the TLS stream we start).
    /// Throws AuthenticationException (or IOException) when the handshake fails; <paramref name="refused"/> hears why.
    /// </summary>
    public async Task<bool> StartTlsAsync(ClusterTls tls, Action<string> refused, CancellationToken ct)
    {
        if (Reader.TryRead(out var early))
        {
            var extra = early.Buffer.Length;
            Reader.AdvanceTo(early.Buffer.Start);
            if (extra > 0) return false;
        }
        await Reader.CompleteAsync();
        await Writer.CompleteAsync();
        var stream = new SslStream(_network, leaveInnerStreamOpen: true);
        _tls = stream;
        // Until the handshake is done the old pipes are complete: nothing can use the plain socket by mistake.
        await stream.AuthenticateAsServerAsync(tls.ServerOptions(requireClientCertificate: true, refused), ct);
        Peer = tls.Validate(stream.RemoteCertificate, TlsPeerRole.Client);
        (Reader, Writer) = Pipes(stream);
        return true;
    }

    /// <summary>Half-closes the socket (no more bytes from us) so an error reply already sent is read before the close.</summary>
    public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>Closes the socket first, then completes the pipes, so completing cannot block on a peer that stopped reading.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_tls is not null) await _tls.DisposeAsync();
        await _network.DisposeAsync();
        try { await Reader.CompleteAsync(); } catch (Exception) { /* the stream is gone */ }
        try { await Writer.CompleteAsync(); } catch (Exception) { /* nothing left to deliver */ }
    }
}
