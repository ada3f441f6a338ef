// The fixed-newstyle handshake: greeting, client flags, then option haggling until the client picks an export
// (OPT_GO / OPT_EXPORT_NAME), aborts, or breaks the protocol. With TLS configured the server is in the protocol's
// FORCEDTLS mode: before NBD_OPT_STARTTLS every option but ABORT is answered NBD_REP_ERR_TLS_REQD and
// OPT_EXPORT_NAME closes the connection. Runs once per connection, so it favours clarity over speed.
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using System.Security.Authentication;
using CloudFs.Actors.Gateway;
using CloudFs.Actors.Security;
using CloudFs.Actors.Volumes.Attachments;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Nbd;

/// <param name="leases">Where a writable session takes its share of the volume's read-write lease (null: no leases).</param>
/// <param name="client">The client host (its address): its connections share one attachment.</param>
/// <param name="holder">Who this connection is, as the volume's writer names it to a second read-write attacher.</param>
/// <param name="attachmentLost">Called if the read-write lease this connection took is lost later (the session must end).</param>
internal sealed class NbdHandshake(NbdTransport transport, IVolumeGateway gateway, Action<string>? log, string peer, ClusterTls? tls = null,
    NbdAttachmentLeases? leases = null, string client = "", string holder = "", Action<string>? attachmentLost = null)
{
    // The transport's current pipes: they move onto the TLS stream at NBD_OPT_STARTTLS.
    private PipeReader Reader => transport.Reader;
    private PipeWriter Writer => transport.Writer;

    private bool _noZeroes;
    private bool _structured;
    private NbdExport? _metaExport;
    private bool _metaBaseAllocation;
    private Id160? _metaChangedSince;

    /// <summary>
    /// True when the handshake ended on an error reply the client must still read (e.g. an oversized option):
    /// the connection should half-close and drain rather than reset, so the reply is not lost.
    /// </summary>
    public bool DrainBeforeClose { get; private set; }

    /// <summary>The volume's read-write attachment lease the negotiated session holds (null: a read-only session). The
    /// connection owns it from then on and disposes it when it ends.</summary>
    public NbdAttachmentLeases.Use? Attachment { get; private set; }

    /// <summary>The negotiated session, or null when the connection must close (abort, EOF, protocol violation).</summary>
    public async Task<NbdSession?> RunAsync(CancellationToken ct)
    {
        var greeting = Writer.GetSpan(18);
        BinaryPrimitives.WriteUInt64BigEndian(greeting, NbdProtocol.NbdMagic);
        BinaryPrimitives.WriteUInt64BigEndian(greeting[8..], NbdProtocol.OptionMagic);
        BinaryPrimitives.WriteUInt16BigEndian(greeting[16..], NbdProtocol.FlagFixedNewstyle | NbdProtocol.FlagNoZeroes);
        Writer.Advance(18);
        await Writer.FlushAsync(ct);

        var clientFlagBytes = await ReadExactAsync(4, ct);
        if (clientFlagBytes is null) return null;
        uint clientFlags = BinaryPrimitives.ReadUInt32BigEndian(clientFlagBytes);
        if ((clientFlags & ~(NbdProtocol.ClientFlagFixedNewstyle | NbdProtocol.ClientFlagNoZeroes)) != 0)
        {
            // The protocol requires dropping a client that sets flags the server did not offer.
            log?.Invoke($"nbd {peer}: client flags 0x{clientFlags:x} include unknown bits; closing");
            return null;
        }
        _noZeroes = (clientFlags & NbdProtocol.ClientFlagNoZeroes) != 0;
        if (tls is not null && (clientFlags & NbdProtocol.ClientFlagFixedNewstyle) == 0)
        {
            // STARTTLS needs fixed newstyle; without it the client can only enter transmission in plain text.
            log?.Invoke($"nbd {peer}: the client cannot negotiate TLS (no fixed newstyle) and this node requires it; closing");
            return null;
        }

        while (true)
        {
            var header = await ReadExactAsync(16, ct);
            if (header is null) return null;
            ulong magic = BinaryPrimitives.ReadUInt64BigEndian(header);
            uint option = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8));
            uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            if (magic != NbdProtocol.OptionMagic)
            {
                log?.Invoke($"nbd {peer}: bad option magic 0x{magic:x16}; closing");
                return null;
            }
            if (length > NbdProtocol.MaximumOptionLength)
            {
                // We will not buffer (or skip) an arbitrarily long option: say why, then end the connection politely.
                WriteOptionReply(option, NbdProtocol.RepErrTooBig,
                    $"option {option} carries {length} bytes; this server accepts at most {NbdProtocol.MaximumOptionLength}");
                await Writer.FlushAsync(ct);
                log?.Invoke($"nbd {peer}: option {option} of {length} bytes is too big; closing");
                DrainBeforeClose = true;
                return null;
            }
            var data = length == 0 ? [] : await ReadExactAsync((int)length, ct);
            if (data is null) return null;

            if (tls is not null && !transport.IsTls && option is not (NbdProtocol.OptStartTls or NbdProtocol.OptAbort))
            {
                if (option == NbdProtocol.OptExportName)
                {
                    // This option cannot be answered with an error: the protocol says to close.
                    log?.Invoke($"nbd {peer}: OPT_EXPORT_NAME without TLS on a node that requires it; closing");
                    return null;
                }
                WriteOptionReply(option, NbdProtocol.RepErrTlsReqd,
                    "this node requires TLS: send NBD_OPT_STARTTLS first (qemu: tls-creds-x509; nbdinfo: nbds:// with tls-certificates=DIR)");
                await Writer.FlushAsync(ct);
                continue;
            }

            switch (option)
            {
                case NbdProtocol.OptStartTls:
                    if (tls is null) WriteOptionReply(option, NbdProtocol.RepErrUnsup, "this node runs without TLS (cloudfs node --tls DIR enables it)");
                    else if (transport.IsTls) WriteOptionReply(option, NbdProtocol.RepErrInvalid, "TLS is already running on this connection");
                    else if (data.Length != 0) WriteOptionReply(option, NbdProtocol.RepErrInvalid, "NBD_OPT_STARTTLS takes no data");
                    else if (!await StartTlsAsync(tls, ct)) return null;
                    break;
                case NbdProtocol.OptExportName:
                {
                    var session = await ExportNameAsync(data, ct);
                    if (session is null) log?.Invoke($"nbd {peer}: OPT_EXPORT_NAME for unknown export '{Printable(data)}'; closing");
                    return session;
                }
                case NbdProtocol.OptAbort:
                    WriteOptionReply(option, NbdProtocol.RepAck);
                    await Writer.FlushAsync(ct);
                    DrainBeforeClose = true;
                    return null;
                case NbdProtocol.OptList:
                    await ListAsync(data, ct);
                    break;
                case NbdProtocol.OptInfo:
                case NbdProtocol.OptGo:
                {
                    var session = await InfoOrGoAsync(option, data, ct);
                    if (session is not null && option == NbdProtocol.OptGo)
                    {
                        await Writer.FlushAsync(ct);
                        return session;
                    }
                    break;
                }
                case NbdProtocol.OptStructuredReply:
                    if (data.Length != 0) WriteOptionReply(option, NbdProtocol.RepErrInvalid, "OPT_STRUCTURED_REPLY takes no data");
                    else
                    {
                        _structured = true;
                        WriteOptionReply(option, NbdProtocol.RepAck);
                    }
                    break;
                case NbdProtocol.OptListMetaContext:
                case NbdProtocol.OptSetMetaContext:
                    await MetaContextAsync(option, data, ct);
                    break;
                default:
                    // Includes extended headers.
                    WriteOptionReply(option, NbdProtocol.RepErrUnsup, $"option {option} is not supported by this server");
                    break;
            }
            await Writer.FlushAsync(ct);
        }
    }

    /// <summary>ACK, then the TLS handshake; false when the connection must close (the client broke the protocol or
    /// its certificate was refused: after the ACK there is no way back to plain text).</summary>
    private async Task<bool> StartTlsAsync(ClusterTls tls, CancellationToken ct)
    {
        WriteOptionReply(NbdProtocol.OptStartTls, NbdProtocol.RepAck);
        await Writer.FlushAsync(ct);
        string? refusal = null;
        try
        {
            if (await transport.StartTlsAsync(tls, reason => refusal = reason, ct)) return true;
            log?.Invoke($"nbd {peer}: the client sent data after NBD_OPT_STARTTLS before its ACK; closing");
            return false;
        }
        catch (Exception e) when (e is AuthenticationException or IOException or CertificateException)
        {
            log?.Invoke($"nbd {peer}: TLS refused: {refusal ?? e.Message}");
            return false;
        }
    }

    private async Task<NbdSession?> ExportNameAsync(byte[] data, CancellationToken ct)
    {
        var (export, _, _) = await ResolveAsync(data, ct);
        if (export is null) return null; // The protocol leaves no way to refuse OPT_EXPORT_NAME but closing.
        // Nor a way to say why it is read-only: the log says it.
        var refusal = await AttachAsync(export, ct);
        if (refusal is { Lost: true } && export.Attachment is not null) return null; // a named attachment that lost its lease: closed
        var session = SessionFor(export, refusal?.Reason);
        int size = _noZeroes ? 10 : 134;
        var reply = Writer.GetSpan(size)[..size];
        reply.Clear();
        BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)session.SizeBytes);
        BinaryPrimitives.WriteUInt16BigEndian(reply[8..], session.TransmissionFlags);
        Writer.Advance(size);
        await Writer.FlushAsync(ct);
        return session;
    }

    private async Task ListAsync(byte[] data, CancellationToken ct)
    {
        if (data.Length != 0)
        {
            WriteOptionReply(NbdProtocol.OptList, NbdProtocol.RepErrInvalid, "OPT_LIST takes no data");
            return;
        }
        IReadOnlyList<VolumeInfo> volumes;
        try { volumes = await gateway.ListAsync(ct); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log?.Invoke($"nbd {peer}: listing volumes failed: {e.Message}");
            WriteOptionReply(NbdProtocol.OptList, NbdProtocol.RepErrPolicy, "the volume list is unavailable: " + e.Message);
            return;
        }
        // A volume in the trash is no export (`cloudfs trash restore` brings it back).
        foreach (var volume in volumes.Where(v => !v.IsTrashed))
        {
            var name = Encoding.UTF8.GetBytes(volume.BaseId.ToString());
            var description = Encoding.UTF8.GetBytes(Describe(volume));
            var payload = new byte[4 + name.Length + description.Length];
            BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)name.Length);
            name.CopyTo(payload, 4);
            description.CopyTo(payload, 4 + name.Length);
            WriteOptionReply(NbdProtocol.OptList, NbdProtocol.RepServer, payload);
        }
        WriteOptionReply(NbdProtocol.OptList, NbdProtocol.RepAck);
    }

    private async Task<NbdSession?> InfoOrGoAsync(uint option, byte[] data, CancellationToken ct)
    {
        // Data: u32 name length, name, u16 number of info requests, that many u16 info types.
        if (data.Length < 6) return Invalid(option, "the option is shorter than its fixed fields");
        uint nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > data.Length - 6) return Invalid(option, "the export name runs past the option data");
        int countAt = 4 + (int)nameLength;
        int requests = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(countAt));
        if (data.Length != countAt + 2 + 2 * requests) return Invalid(option, "the number of information requests does not match the option length");
        bool wantName = false, wantDescription = false;
        for (int i = 0; i < requests; i++)
        {
            ushort info = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(countAt + 2 + 2 * i));
            wantName |= info == NbdProtocol.InfoName;
            wantDescription |= info == NbdProtocol.InfoDescription;
        }

        var (export, error, unknown) = await ResolveAsync(data.AsMemory(4, (int)nameLength), ct);
        if (export is null)
        {
            WriteOptionReply(option, error, unknown);
            return null;
        }
        var volume = export.Volume;
        // OPT_INFO only asks: it takes no lease, and says what OPT_GO would get now.
        var refusal = option == NbdProtocol.OptGo ? await AttachAsync(export, ct)
            : leases is not null && export.Version is null && NbdSession.Writable(volume) && Attachment is null
                ? await leases.ProbeAsync(volume.BaseId, client, holder, export.Attachment, ct) : null;
        if (refusal is { Lost: true } && export.Attachment is not null)
        {
            // A named attachment whose lease was superseded (revoked, or another holder took the volume) may not write
            // again: it is refused rather than served read-only, so that a client that reconnects learns why and stops.
            WriteOptionReply(option, NbdProtocol.RepErrPolicy, refusal.Reason);
            return null;
        }
        var readOnlyBecause = refusal?.Reason;
        var session = SessionFor(export, readOnlyBecause);

        Span<byte> exportInfo = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(exportInfo, NbdProtocol.InfoExport);
        BinaryPrimitives.WriteUInt64BigEndian(exportInfo[2..], (ulong)session.SizeBytes);
        BinaryPrimitives.WriteUInt16BigEndian(exportInfo[10..], session.TransmissionFlags);
        WriteOptionReply(option, NbdProtocol.RepInfo, exportInfo);
        if (wantName) WriteInfoString(option, NbdProtocol.InfoName, export.Name);
        if (wantDescription)
            WriteInfoString(option, NbdProtocol.InfoDescription, Describe(volume, export.Version, export.SizeBytes) + (readOnlyBecause is null ? "" : "; read-only: " + readOnlyBecause));
        // Always sent: the server enforces 512-byte alignment, so every client must learn it.
        Span<byte> sizes = stackalloc byte[14];
        BinaryPrimitives.WriteUInt16BigEndian(sizes, NbdProtocol.InfoBlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(sizes[2..], NbdProtocol.MinimumBlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(sizes[6..], NbdProtocol.PreferredBlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(sizes[10..], NbdProtocol.MaximumPayload);
        WriteOptionReply(option, NbdProtocol.RepInfo, sizes);
        WriteOptionReply(option, NbdProtocol.RepAck);
        return session;
    }

    private async Task MetaContextAsync(uint option, byte[] data, CancellationToken ct)
    {
        bool set = option == NbdProtocol.OptSetMetaContext;
        if (!_structured)
        {
            WriteOptionReply(option, NbdProtocol.RepErrInvalid, "meta contexts need structured replies to be negotiated first");
            return;
        }
        // Data: u32 export name length, name, u32 number of queries, then each query as u32 length + string.
        if (data.Length < 8 || BinaryPrimitives.ReadUInt32BigEndian(data) > data.Length - 8)
        {
            WriteOptionReply(option, NbdProtocol.RepErrInvalid, "the export name runs past the option data");
            return;
        }
        int nameLength = (int)BinaryPrimitives.ReadUInt32BigEndian(data);
        int at = 4 + nameLength;
        uint queries = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(at));
        at += 4;
        bool matched = queries == 0 && !set; // An empty list asks for every context; an empty set selects none.
        var changedSince = new List<Id160>();
        for (uint i = 0; i < queries; i++)
        {
            if (data.Length - at < 4 || BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(at)) > data.Length - at - 4)
            {
                WriteOptionReply(option, NbdProtocol.RepErrInvalid, "a meta context query runs past the option data");
                return;
            }
            int queryLength = (int)BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(at));
            var query = data.AsSpan(at + 4, queryLength);
            at += 4 + queryLength;
            matched |= query.SequenceEqual("base:allocation"u8) || (!set && query.SequenceEqual("base:"u8));
            if (query.StartsWith(Encoding.ASCII.GetBytes(NbdProtocol.ChangedSincePrefix)))
            {
                var text = Printable(query[NbdProtocol.ChangedSincePrefix.Length..]);
                if (!Id160.TryParse(text, out var since))
                {
                    WriteOptionReply(option, NbdProtocol.RepErrInvalid,
                        $"'{text}' is not a version id (40 hex characters): the context is {NbdProtocol.ChangedSincePrefix}<version>");
                    return;
                }
                if (!changedSince.Contains(since)) changedSince.Add(since);
            }
        }
        if (at != data.Length)
        {
            WriteOptionReply(option, NbdProtocol.RepErrInvalid, "trailing bytes after the meta context queries");
            return;
        }
        if (set && changedSince.Count > 1)
        {
            WriteOptionReply(option, NbdProtocol.RepErrInvalid, $"one {NbdProtocol.ChangedSincePrefix}<version> context per connection, not {changedSince.Count}");
            return;
        }
        var (export, error, refusal) = await ResolveAsync(data.AsMemory(4, nameLength), ct);
        if (export is null)
        {
            WriteOptionReply(option, error, refusal);
            return;
        }
        // Every version asked for must be in the volume's history and still available; the client hears why not.
        foreach (var since in changedSince)
            if (await RefuseVersionAsync(option, export, since, ct)) return;
        if (matched)
        {
            // Ids in a LIST reply are reserved (zero); SET hands out the id BLOCK_STATUS replies will carry.
            WriteMetaContext(option, set ? NbdProtocol.BaseAllocationContextId : 0, NbdProtocol.BaseAllocation);
        }
        foreach (var since in changedSince)
            WriteMetaContext(option, set ? NbdProtocol.ChangedSinceContextId : 0, NbdProtocol.ChangedSincePrefix + since);
        if (set)
        {
            _metaExport = export;
            _metaBaseAllocation = matched;
            _metaChangedSince = changedSince.Count == 1 ? changedSince[0] : null;
        }
        WriteOptionReply(option, NbdProtocol.RepAck);
    }

    /// <summary>
    /// Null when the session may write: it holds the volume's read-write lease (<see cref="Attachment"/>), or the export
    /// is read-only anyway (a version, a copy without the secret), or this server keeps no leases. Otherwise why it is
    /// served read-only: another holds the lease (one read-write attachment per volume across the cluster; read-only
    /// ones are always allowed).
    /// </summary>
    private async Task<AttachmentRefused?> AttachAsync(NbdExport export, CancellationToken ct)
    {
        var volume = export.Volume;
        if (leases is null || export.Version is not null || !NbdSession.Writable(volume)) return null;
        if (Attachment is not null) return null; // OPT_GO ends the negotiation: a lease is taken once per connection.
        var (held, refusal) = await leases.AttachAsync(volume.BaseId, client, holder, export.Attachment, reason => attachmentLost?.Invoke(reason), ct);
        Attachment = held;
        if (refusal is { Lost: true } && export.Attachment is not null)
            log?.Invoke($"nbd {peer}: refusing attachment {export.Attachment} of volume {volume.BaseId}: {refusal.Reason}");
        else if (refusal is not null) log?.Invoke($"nbd {peer}: serving volume {volume.BaseId} read-only: {refusal.Reason}");
        return refusal;
    }

    private void WriteMetaContext(uint option, uint id, string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        var payload = new byte[4 + bytes.Length];
        BinaryPrimitives.WriteUInt32BigEndian(payload, id);
        bytes.CopyTo(payload, 4);
        WriteOptionReply(option, NbdProtocol.RepMetaContext, payload);
    }

    /// <summary>
    /// Answers an option with an error and returns true when <paramref name="version"/> cannot serve a changed-since
    /// context of <paramref name="export"/>: NBD_REP_ERR_POLICY when compaction took the history after it (the message
    /// names the oldest version still available), NBD_REP_ERR_INVALID when it is unknown or of another volume's history.
    /// </summary>
    private async Task<bool> RefuseVersionAsync(uint option, NbdExport export, Id160 version, CancellationToken ct)
    {
        var volume = export.Volume.BaseId;
        try
        {
            await gateway.ChangedSinceAsync(volume, version, export.Version, 0, 0, ct);
            return false;
        }
        catch (VersionCompactedException e)
        {
            WriteOptionReply(option, NbdProtocol.RepErrPolicy, e.Message);
        }
        catch (Exception e) when (e is UnknownVersionException or InvalidRangeException)
        {
            WriteOptionReply(option, NbdProtocol.RepErrInvalid, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log?.Invoke($"nbd {peer}: checking version {version} of volume {volume} failed: {e.Message}");
            WriteOptionReply(option, NbdProtocol.RepErrPolicy, $"version {version} of volume {volume} cannot be checked now: {e.Message}");
        }
        return true;
    }

    /// <summary>What an export name resolved to: a volume, the version of it the export serves (null: current) of
    /// <paramref name="SizeBytes"/> (a version's own size, which resizes after it do not change), and the name the client
    /// gave its read-write attachment (null: none).</summary>
    private sealed record NbdExport(VolumeInfo Volume, Id160? Version, long SizeBytes, string? Attachment = null)
    {
        public string Name => Version is { } v ? $"{Volume.BaseId}@{v}" : Volume.BaseId.ToString();
    }

    /// <param name="readOnlyBecause">Non-null: the session is read-only although the volume is writable (another client
    /// holds its read-write attachment).</param>
    private NbdSession SessionFor(NbdExport export, string? readOnlyBecause = null)
    {
        var volume = export.Volume;
        // Contexts chosen for another export do not carry over to this one.
        var mine = _metaExport is { } meta && meta.Volume.BaseId == volume.BaseId && meta.Version == export.Version;
        return new NbdSession(
            volume.BaseId,
            export.SizeBytes,
            (ushort)(NbdSession.FlagsFor(volume, _structured, version: export.Version is not null) | (readOnlyBecause is null ? 0 : NbdProtocol.FlagReadOnly)),
            _structured,
            mine && _metaBaseAllocation,
            mine ? _metaChangedSince : null,
            export.Version,
            readOnlyBecause is null && export.Version is null ? Attachment?.Lease ?? 0 : 0);
    }

    /// <summary>
    /// The export a name designates: a volume's 40-hex id, its name, "" for the only volume when there is one, or
    /// VOL@VERSION for a version of the volume (its chain's or one it was branched from, still readable). When there is
    /// none: the NBD_REP_ERR_* to answer and why.
    /// </summary>
    private async Task<(NbdExport? Export, uint Error, string Reason)> ResolveAsync(ReadOnlyMemory<byte> name, CancellationToken ct)
    {
        var unknown = $"no volume named '{Printable(name.Span)}' (the export name is a volume's 40-hex id or its name, or VOLUME@VERSION for one version of it)";
        try
        {
            if (name.Length == 0)
            {
                var all = (await gateway.ListAsync(ct)).Where(v => !v.IsTrashed).ToArray();
                return all.Length == 1 ? (new NbdExport(all[0], null, all[0].SizeBytes), 0, "") : (null, NbdProtocol.RepErrUnknown, unknown);
            }
            // Ids and names are short and printable ASCII; anything else names no volume (and costs no lookup).
            if (NbdExportName.Parse(name.Span) is not { } parsed) return (null, NbdProtocol.RepErrUnknown, unknown);
            if (await gateway.FindAsync(parsed.Volume, ct) is not { IsTrashed: false } volume) return (null, NbdProtocol.RepErrUnknown, unknown);
            if (parsed.Version is not { } version) return (new NbdExport(volume, null, volume.SizeBytes, parsed.Attachment), 0, "");
            long size;
            try { size = await gateway.VersionSizeAsync(volume.BaseId, version, ct); }
            catch (VersionCompactedException e) { return (null, NbdProtocol.RepErrPolicy, e.Message); }
            catch (Exception e) when (e is UnknownVersionException or InvalidRangeException) { return (null, NbdProtocol.RepErrUnknown, e.Message); }
            return (new NbdExport(volume, version, size), 0, "");
        }
        catch (VolumeNotFoundException) { return (null, NbdProtocol.RepErrUnknown, unknown); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log?.Invoke($"nbd {peer}: looking up export '{Printable(name.Span)}' failed: {e.Message}");
            return (null, NbdProtocol.RepErrUnknown, unknown);
        }
    }

    private NbdSession? Invalid(uint option, string message)
    {
        WriteOptionReply(option, NbdProtocol.RepErrInvalid, message);
        return null;
    }

    private void WriteInfoString(uint option, ushort info, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var payload = new byte[2 + bytes.Length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, info);
        bytes.CopyTo(payload, 2);
        WriteOptionReply(option, NbdProtocol.RepInfo, payload);
    }

    private void WriteOptionReply(uint option, uint type, string message) =>
        WriteOptionReply(option, type, Encoding.UTF8.GetBytes(message));

    private void WriteOptionReply(uint option, uint type, ReadOnlySpan<byte> payload = default)
    {
        var span = Writer.GetSpan(20 + payload.Length);
        BinaryPrimitives.WriteUInt64BigEndian(span, NbdProtocol.OptionReplyMagic);
        BinaryPrimitives.WriteUInt32BigEndian(span[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(span[12..], type);
        BinaryPrimitives.WriteUInt32BigEndian(span[16..], (uint)payload.Length);
        payload.CopyTo(span[20..]);
        Writer.Advance(20 + payload.Length);
    }

    /// <summary>Exactly <paramref name="count"/> bytes, or null when the client closed first.</summary>
    private async Task<byte[]?> ReadExactAsync(int count, CancellationToken ct)
    {
        var result = await Reader.ReadAtLeastAsync(count, ct);
        var buffer = result.Buffer;
        if (buffer.Length < count)
        {
            Reader.AdvanceTo(buffer.Start, buffer.End);
            return null;
        }
        var bytes = buffer.Slice(0, count).ToArray();
        Reader.AdvanceTo(buffer.GetPosition(count));
        return bytes;
    }

    private static string Describe(VolumeInfo volume, Id160? version = null, long versionSize = 0) => version is { } v
        ? $"CloudFS volume {volume.BaseId} as of version {v}, {versionSize} bytes, read-only"
        : $"CloudFS volume, {volume.SizeBytes} bytes, {volume.Mode.ToString().ToLowerInvariant()}, lsn {volume.Lsn}, version {volume.CurrentVersion}"
          + (volume.IsWritable ? "" : NbdSession.Writable(volume) ? ", served through its primary" : ", read-only replica");

    private static string Printable(ReadOnlySpan<byte> name)
    {
        var text = Encoding.UTF8.GetString(name[..Math.Min(name.Length, 80)]);
        return new string(text.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}
