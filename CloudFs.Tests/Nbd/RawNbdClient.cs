// A deliberately minimal NBD client over a raw socket, for traffic real clients refuse to send (bad magics,
// unknown commands, option garbage, truncated headers) and for checking pipelining and allocation precisely;
// StartTls upgrades it with NBD_OPT_STARTTLS (then it reads and writes through the TLS stream).
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using CloudFs.Actors.Security;
using CloudFs.Host.Nbd;

namespace CloudFs.Tests.Nbd;

public sealed class RawNbdClient : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _header = new byte[32];
    private SslStream? _tls;
    private TlsRecordCounter? _records;

    private RawNbdClient(Socket socket) => _socket = socket;

    /// <param name="from">The client's own address (another loopback address stands for another client host).</param>
    public static RawNbdClient Connect(int port, bool noZeroes = true, IPAddress? address = null, IPAddress? from = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 10_000 };
        if (from is not null) socket.Bind(new IPEndPoint(from, 0));
        socket.Connect(new IPEndPoint(address ?? IPAddress.Loopback, port));
        var client = new RawNbdClient(socket);
        var greeting = client.Receive(18);
        Assert.Equal(NbdProtocol.NbdMagic, BinaryPrimitives.ReadUInt64BigEndian(greeting));
        Assert.Equal(NbdProtocol.OptionMagic, BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)));
        var flags = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(flags, NbdProtocol.ClientFlagFixedNewstyle | (noZeroes ? NbdProtocol.ClientFlagNoZeroes : 0u));
        client.Send(flags);
        return client;
    }

    public Socket Socket => _socket;

    /// <summary>TLS records the server sent so far (handshake included); 0 before <see cref="StartTls"/>.</summary>
    public long TlsRecordsReceived => _records?.Records ?? 0;

    /// <summary>
    /// NBD_OPT_STARTTLS, then the TLS handshake presenting <paramref name="client"/>'s client certificate (none when
    /// null) and accepting a node certificate of its authority. Throws when the server refuses either.
    /// </summary>
    public void StartTls(ClusterTls? client, ClusterTls trust)
    {
        SendOption(NbdProtocol.OptStartTls, default);
        var (_, type, _) = ReceiveOptionReply();
        Assert.Equal(NbdProtocol.RepAck, type);
        _records = new TlsRecordCounter(new NetworkStream(_socket, ownsSocket: false));
        var stream = new SslStream(_records, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            RemoteCertificateValidationCallback = (_, c, _, _) => trust.TryValidateServer(c, null, out _),
        };
        if (client is not null) options.ClientCertificates = [client.ClientCertificate];
        stream.AuthenticateAsClient(options);
        _tls = stream;
    }

    public void Send(ReadOnlySpan<byte> bytes)
    {
        if (_tls is not null) { _tls.Write(bytes); return; }
        while (!bytes.IsEmpty) bytes = bytes[_socket.Send(bytes)..];
    }

    public byte[] Receive(int count)
    {
        var buffer = new byte[count];
        ReceiveInto(buffer);
        return buffer;
    }

    public void ReceiveInto(Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int n = _tls is not null ? _tls.Read(buffer) : _socket.Receive(buffer);
            if (n == 0) throw new EndOfStreamException("the server closed the connection");
            buffer = buffer[n..];
        }
    }

    /// <summary>True when the server closed the connection (EOF or reset) within the receive timeout.</summary>
    public bool ServerClosed()
    {
        try
        {
            var one = new byte[1];
            while (true)
            {
                int n = _tls is not null ? _tls.Read(one) : _socket.Receive(one);
                if (n == 0) return true;
            }
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut }) { return false; }
        catch (IOException) { return true; } // a reset under TLS
        catch (AuthenticationException) { return true; }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { return true; }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut) { return false; }
    }

    public void SendOption(uint option, ReadOnlySpan<byte> data, ulong magic = NbdProtocol.OptionMagic, uint? length = null)
    {
        var header = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(header, magic);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(12), length ?? (uint)data.Length);
        Send(header);
        Send(data);
    }

    public (uint Option, uint Type, byte[] Data) ReceiveOptionReply()
    {
        var header = Receive(20);
        Assert.Equal(NbdProtocol.OptionReplyMagic, BinaryPrimitives.ReadUInt64BigEndian(header));
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16));
        return (BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8)), BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12)), Receive((int)length));
    }

    public static byte[] GoData(string exportName, params ushort[] infos)
    {
        var name = Encoding.UTF8.GetBytes(exportName);
        var data = new byte[4 + name.Length + 2 + 2 * infos.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)name.Length);
        name.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + name.Length), (ushort)infos.Length);
        for (int i = 0; i < infos.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(6 + name.Length + 2 * i), infos[i]);
        return data;
    }

    /// <summary>OPT_GO on the export; returns the export size and transmission flags.</summary>
    public (ulong Size, ushort Flags) Go(string exportName)
    {
        SendOption(NbdProtocol.OptGo, GoData(exportName));
        ulong size = 0;
        ushort flags = 0;
        while (true)
        {
            var (_, type, data) = ReceiveOptionReply();
            if (type == NbdProtocol.RepAck) return (size, flags);
            Assert.Equal(NbdProtocol.RepInfo, type);
            if (BinaryPrimitives.ReadUInt16BigEndian(data) == NbdProtocol.InfoExport)
            {
                size = BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(2));
                flags = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(10));
            }
        }
    }

    public void SendRequest(ushort type, ulong cookie, ulong offset, uint length, ushort flags = 0, uint magic = NbdProtocol.RequestMagic, ReadOnlySpan<byte> payload = default)
    {
        var h = _header.AsSpan(0, 28);
        BinaryPrimitives.WriteUInt32BigEndian(h, magic);
        BinaryPrimitives.WriteUInt16BigEndian(h[4..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(h[6..], type);
        BinaryPrimitives.WriteUInt64BigEndian(h[8..], cookie);
        BinaryPrimitives.WriteUInt64BigEndian(h[16..], offset);
        BinaryPrimitives.WriteUInt32BigEndian(h[24..], length);
        Send(h);
        Send(payload);
    }

    /// <summary>Reads one simple reply header: (error, cookie). The caller reads any READ data that follows.</summary>
    public (uint Error, ulong Cookie) ReceiveSimpleReply()
    {
        var h = _header.AsSpan(0, 16);
        ReceiveInto(h);
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(h);
        // Not Assert.Equal: this sits in the allocation test's loop, and xunit's comparer allocates.
        if (magic != NbdProtocol.SimpleReplyMagic) Assert.Fail($"expected a simple reply, got magic 0x{magic:x8}");
        return (BinaryPrimitives.ReadUInt32BigEndian(h[4..]), BinaryPrimitives.ReadUInt64BigEndian(h[8..]));
    }

    public void Dispose()
    {
        _tls?.Dispose();
        _socket.Dispose();
    }
}
