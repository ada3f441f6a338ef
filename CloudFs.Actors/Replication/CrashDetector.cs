// Fast detection of crashed members: when remoting loses a member's connection, its address is probed; a host
// whose kernel refuses the connection (the port is closed: the process is gone) is downed at once, instead of after
// the failure detector's heartbeat pause and the split-brain resolver's stable-after. A member that is merely slow
// or cut off by the network still goes through the failure detector and the split brain resolver.
using System.Net.Sockets;
using Akka.Actor;
using Akka.Event;
using Akka.Remote;

namespace CloudFs.Actors.Replication;

public sealed class CrashDetector : ReceiveActor
{
    public const string Name = "cloudfs-crash-detector";

    private sealed record Probed(Address Member, bool Refused);

    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<Address> _probing = new();
    private readonly TimeSpan _probeTimeout;

    public static Props Props(TimeSpan probeTimeout) => Akka.Actor.Props.Create(() => new CrashDetector(probeTimeout));

    public CrashDetector(TimeSpan probeTimeout)
    {
        _probeTimeout = probeTimeout;
        Receive<DisassociatedEvent>(e => Probe(e.RemoteAddress));
        Receive<AssociationErrorEvent>(e => Probe(e.RemoteAddress));
        Receive<Probed>(p =>
        {
            _probing.Remove(p.Member);
            if (!p.Refused) return;
            var member = _cluster.State.Members.FirstOrDefault(m => m.Address == p.Member);
            if (member is null || member.Status is Akka.Cluster.MemberStatus.Down or Akka.Cluster.MemberStatus.Removed) return;
            _log.Warning("member {0} refuses connections: its process is gone; downing it", p.Member);
            _cluster.Down(p.Member);
        });
    }

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));
        Context.System.EventStream.Subscribe(Self, typeof(AssociationErrorEvent));
    }

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    private void Probe(Address member)
    {
        if (member == _cluster.SelfAddress || member.Host is null || member.Port is null || !_probing.Add(member)) return;
        if (!_cluster.State.Members.Any(m => m.Address == member && m.Status == Akka.Cluster.MemberStatus.Up)) { _probing.Remove(member); return; }
        var timeout = _probeTimeout;
        RefusedTwiceAsync(member.Host, member.Port.Value, timeout).PipeTo(Self, success: refused => new Probed(member, refused),
            failure: _ => new Probed(member, false));
    }

    // Twice, a moment apart: a process being restarted on the same port is not mistaken for a dead one.
    private static async Task<bool> RefusedTwiceAsync(string host, int port, TimeSpan timeout)
    {
        if (!await RefusedAsync(host, port, timeout).ConfigureAwait(false)) return false;
        await Task.Delay(200).ConfigureAwait(false);
        return await RefusedAsync(host, port, timeout).ConfigureAwait(false);
    }

    private static async Task<bool> RefusedAsync(string host, int port, TimeSpan timeout)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await socket.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
        catch (Exception)
        {
            return false; // no answer at all (timeout, unreachable network): the failure detector decides
        }
    }
}
