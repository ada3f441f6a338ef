// `cloudfs node`: starts the CloudFsNode, the NBD server and the HTTP API in that order, prints the one
// ready line, and on SIGINT/SIGTERM stops them in reverse order (the node writes its checkpoint last).
using System.Net;
using System.Runtime.InteropServices;
using CloudFs.Actors.Node;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;
using CloudFs.Host.Cli;
using CloudFs.Host.Http;
using CloudFs.Host.Metrics;
using CloudFs.Host.Nbd;

namespace CloudFs.Host.Node;

internal static class NodeRunner
{
    public static async Task<int> RunAsync(NodeOptions options, CliIo io, CancellationToken ct)
    {
        // Libraries (Akka's standard-out logger) write to Console.Out: send that to stderr so that stdout carries
        // exactly one line, the ready line.
        if (ReferenceEquals(io.Out, Console.Out)) Console.SetOut(Console.Error);
        var gate = new object();
        void Log(string line) { lock (gate) io.Err.WriteLine($"cloudfs: {line}"); }

        // What the node will run with (flags over --config over the defaults), checked before anything starts.
        // Every setting is checked here: a missing or wrong one is refused before any file or port is touched.
        var (_, planned) = Planned(options);
        var listen = IPAddress.Parse(planned.Listen); // the settings checked it
        // Trust first: a node that must not listen here says so before anything else is looked at.
        var (tls, trusted) = NodeTrust.Check(options, planned, listen, Log);
        using var _ = tls;
        options = trusted;
        var ports = new[] { ("akka", planned.AkkaPort), ("HTTP", planned.HttpPort), ("NBD", planned.NbdPort) }.Where(p => p.Item2 != 0);
        if (PortCheck.FirstBusy(listen, ports) is { } busy)
            throw new CliException(busy);
        var directory = Path.GetDirectoryName(Path.GetFullPath(planned.DevicePath));
        var madeDirectory = directory is not null && !planned.DevicePath.StartsWith("/dev/", StringComparison.Ordinal) && !Directory.Exists(directory);
        if (madeDirectory) Directory.CreateDirectory(directory!);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        void OnSignal(PosixSignalContext signal)
        {
            signal.Cancel = true; // we exit on our own once everything is closed
            Log($"{signal.Signal} received, stopping");
            stop.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        CloudFsNode node;
        try
        {
            node = await CloudFsNode.StartAsync(options, stop.Token);
        }
        catch (Exception e) when (Reason(e) is { } reason)
        {
            // A refused start leaves nothing behind: the engine removes a log file it created, this the directory.
            if (madeDirectory && !Directory.EnumerateFileSystemEntries(directory!).Any()) Directory.Delete(directory!);
            throw new CliException($"cannot start the node: {reason}");
        }

        HttpApi? http = null;
        NbdServer? nbd = null;
        try
        {
            var effective = node.Options;
            var metrics = new HostMetrics(Prometheus.Metrics.DefaultRegistry);
            // The node's store, actors and management are its current incarnation's (a new one after it rejoined the
            // cluster), so the front ends ask for them each time.
            var log = new LogStoreVersionLog(() => node.Store);
            metrics.ObserveLog(() => node.Store.Usage, () => node.Store.ListVolumes().Count);
            metrics.ObserveCompaction(() => node.Store.CompactionStats);
            metrics.ObserveReplication(node.Replication);
            metrics.ObserveIdentity(node.IdentityRefusals);
            metrics.ObserveIntegrity(() => node.Store.Scrubber.Stats, () => node.Store.ListVolumes());
            metrics.ObserveStreamReads(() => node.Store.Streams.Reads);
            var gateway = new MeteredVolumeGateway(node.Gateway, metrics);

            if (tls is not null && node.HostId != tls.HostId)
                throw new CliException($"the node started as host {node.HostId}, but its certificate names host {tls.HostId}");
            nbd = new NbdServer(gateway, new IPEndPoint(listen, effective.NbdPort), Log) { Settings = node.Settings.Nbd, Tls = tls, Attachments = node.Attachments };
            metrics.ObserveNbd(nbd);
            try { nbd.Start(); }
            catch (Exception e) when (Reason(e) is { } reason) { throw new CliException($"cannot start the NBD server on {listen}:{effective.NbdPort}: {reason}"); }

            http = new HttpApi(new HttpApiOptions(new IPEndPoint(listen, effective.HttpPort), node.Settings.Http) { Tls = tls },
                gateway, log, new ManagementClusterView(node, effective.HttpPort), metrics, Log);
            try { await http.StartAsync(stop.Token); }
            catch (Exception e) when (Reason(e) is { } reason) { throw new CliException($"cannot start the HTTP API on {listen}:{effective.HttpPort}: {reason}"); }

            lock (gate)
            {
                var secured = tls is null ? "" : $", tls {tls.Directory}";
                io.Out.WriteLine($"cloudfs: node {node.HostId} ready (akka {listen}:{effective.AkkaPort}, {(tls is null ? "http" : "https")} {listen}:{http.BoundEndPoint.Port}, nbd {listen}:{nbd.Port}, device {effective.DevicePath}{secured})");
                io.Out.Flush();
            }
            // Serve until a signal, or until the node stops on its own (a fatal error inside it; a node the cluster
            // downed rejoins instead): then the process must not linger half-alive with its ports open.
            var signalled = Task.Delay(Timeout.Infinite, stop.Token);
            var finished = await Task.WhenAny(signalled, node.Stopped);
            if (finished == signalled) return 0;
            Log("the node's actor system stopped unexpectedly; shutting down");
            return 1;
        }
        finally
        {
            if (http is not null) await http.DisposeAsync();
            if (nbd is not null) await nbd.DisposeAsync();
            await node.DisposeAsync();
            Log("node stopped");
        }
    }

    /// <summary>The settings the node will run with and the options they stand for; an invalid one is a usage error.</summary>
    private static (CloudFsSettings Settings, NodeOptions Options) Planned(NodeOptions options)
    {
        try
        {
            var (_, settings) = CloudFsConfig.Load(options);
            return (settings, CloudFsConfig.ToOptions(settings, options.ConfigFile));
        }
        catch (Exception e) when (e is SettingsException or Akka.Configuration.ConfigurationException or FormatException or FileNotFoundException)
        {
            throw new CliException($"the configuration is not valid: {e.Message}", CloudFsCli.ExitUsage);
        }
    }

    /// <summary>The operator's sentence for a start-up failure (engine errors may arrive wrapped); null for a bug.</summary>
    private static string? Reason(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is CloudFsException or CliException) return x.Message;
            if (x is System.Net.Sockets.SocketException s) return s.Message;
            if (x is IOException io) return io.Message;
            if (x is UnauthorizedAccessException u) return u.Message;
        }
        return e is OperationCanceledException ? "interrupted while starting" : null;
    }
}
