// Fast detection of crashed members: when remoting loses a member's connection, its address is probed; a host
// whose kernel refuses the connection (the port is closed: the process is gone) is quarantined and downed at once,
// instead of after the failure detector's heartbeat pause and the split-brain resolver's stable-after. A member that
// is merely slow or cut off by the network still goes through the failure detector and the split brain resolver.
using System.Net.Sockets;
using Akka.Actor;
using Akka.Event;
using Akka.Remote;

namespace CloudFs.Actors.Replication;

public sealed class CrashDetector : ReceiveActor
{
    public const string Name = "cloudfs-crash-detector";

    private enum Verdict { Refused, Accepts, Unclear, NoAnswer }
    private readonly record struct Outcome(Verdict Verdict, string Detail);
    private sealed record Probed(Address Member, Outcome Outcome);

    // How long a port that still accepts connections after its member's connection dropped is probed again.
    private static readonly TimeSpan AcceptingWindow = TimeSpan.FromSeconds(3);

    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IRemoteActorRefProvider _remote = (IRemoteActorRefProvider)((ExtendedActorSystem)Context.System).Provider;
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
            if (p.Outcome.Verdict != Verdict.Refused)
            {
                _log.Info("member {0} lost its connection but its port {1}: left to the failure detector", p.Member, p.Outcome.Detail);
                return;
            }
            var member = _cluster.State.Members.FirstOrDefault(m => m.Address == p.Member);
            if (member is null || member.Status is Akka.Cluster.MemberStatus.Removed) return;
            if (member.Status is Akka.Cluster.MemberStatus.Down)
            {
                // Already downed (a member that stalled, and is now restarting its membership on this port): quarantined
                // too, so the leader removes it now instead of once the failure detector gives up on it, and its next
                // incarnation is let in that much sooner.
                _log.Info("downed member {0} refuses connections: quarantining it so that it is removed now", p.Member);
                _remote.Quarantine(member.Address, member.UniqueAddress.Uid);
                return;
            }
            _log.Warning("member {0} refuses connections: its process is gone; quarantining and downing it", p.Member);
            // The leader removes a Down member only once it is also unreachable; the failure detector would take 3-6 s to
            // say so. Quarantining this incarnation (its uid: a restarted process has another) makes the cluster mark it
            // terminated, which counts as unreachable, so the leader removes it at its next round, and only then can the
            // singletons on it (placement, the shard coordinator) move. A dead process loses nothing by the quarantine.
            _remote.Quarantine(member.Address, member.UniqueAddress.Uid);
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
        if (!_cluster.State.Members.Any(m => m.Address == member && m.Status is Akka.Cluster.MemberStatus.Up or Akka.Cluster.MemberStatus.Down)) { _probing.Remove(member); return; }
        var timeout = _probeTimeout;
        ProbeAsync(member.Host, member.Port.Value, timeout).PipeTo(Self, success: outcome => new Probed(member, outcome),
            failure: e => new Probed(member, new Outcome(Verdict.Unclear, e.GetBaseException().Message)));
    }

    /// <summary>Refused twice in a row, a moment apart: a process being restarted on the same port is not mistaken for
    /// a dead one. A port that still accepts, or answers with another error (a reset), is probed again for a while: a
    /// killed process's connections can drop before its listening socket is closed (the kernel tears a large process
    /// down for a moment), and probing only once then would leave a dead member to the failure detector.</summary>
    private static async Task<Outcome> ProbeAsync(string host, int port, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + AcceptingWindow;
        var refusals = 0;
        while (true)
        {
            var outcome = await ConnectAsync(host, port, timeout).ConfigureAwait(false);
            if (outcome.Verdict == Verdict.NoAnswer) return outcome; // silence (timeout, unreachable network): the failure detector decides
            refusals = outcome.Verdict == Verdict.Refused ? refusals + 1 : 0;
            if (refusals == 2) return outcome;
            if (refusals == 0 && DateTime.UtcNow >= deadline) return outcome;
            await Task.Delay(200).ConfigureAwait(false);
        }
    }

    private static async Task<Outcome> ConnectAsync(string host, int port, TimeSpan timeout)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await socket.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            return new Outcome(Verdict.Accepts, "still accepts connections");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return new Outcome(Verdict.Refused, "refuses connections");
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.HostUnreachable or SocketError.HostDown
                                             or SocketError.NetworkUnreachable or SocketError.NetworkDown)
        {
            return new Outcome(Verdict.NoAnswer, $"does not answer ({e.SocketErrorCode})");
        }
        catch (OperationCanceledException)
        {
            return new Outcome(Verdict.NoAnswer, $"does not answer within {timeout.TotalSeconds:0.#} s");
        }
        catch (Exception e)
        {
            return new Outcome(Verdict.Unclear, $"answers with an error ({(e as SocketException)?.SocketErrorCode.ToString() ?? e.GetType().Name})");
        }
    }
}
