// The node's identity verifier (/user/cloudfs-identity): asks every other member that is Up (now and on MemberUp) to
// prove with a fresh nonce that it is the host its role names (ProofCheck), and keeps the answers in the
// node's ProvenHosts. A member that fails is logged once (ERROR) and downed, and stays refused until it leaves; with
// TLS a member that does not prove itself within prove-within is downed too. Without TLS a member that never answers
// is only never proven (nothing to prove it with, nothing to hold against it). The node itself is in the directory from
// its start (CloudFsNode): `cloudfs node` checked its certificate against its host id then (NodeTrust).
using System.Security.Cryptography;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using CloudFs.Actors.Node;
using CloudFs.Actors.Replication;
using CloudFs.Actors.Security;
using CloudFs.Actors.Settings;
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Identity;

public sealed class IdentityVerifier : ReceiveActor, IWithTimers
{
    public const string Name = "cloudfs-identity";

    private sealed record Attempt(UniqueAddress Member);
    private sealed record Answered(UniqueAddress Member, ProveIdentity Asked, object Reply);
    private sealed record Pending(Member Member, DateTime Since, ProveIdentity? Asked);

    private readonly ProvenHosts _proven;
    private readonly ClusterTls? _tls;
    private readonly Id160 _self;
    private readonly IdentitySettings _settings;
    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<UniqueAddress, Pending> _pending = new();
    private readonly HashSet<UniqueAddress> _settled = new();

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ProvenHosts proven, ClusterTls? tls, Id160 self, IdentitySettings settings) =>
        Akka.Actor.Props.Create(() => new IdentityVerifier(proven, tls, self, settings));

    public IdentityVerifier(ProvenHosts proven, ClusterTls? tls, Id160 self, IdentitySettings settings)
    {
        _proven = proven;
        _tls = tls;
        _self = self;
        _settings = settings;
        Receive<ClusterEvent.MemberUp>(m => Begin(m.Member));
        Receive<ClusterEvent.MemberDowned>(m => Forget(m.Member.UniqueAddress, removed: false));
        Receive<ClusterEvent.MemberRemoved>(m => Forget(m.Member.UniqueAddress, removed: true));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<Attempt>(a => Ask(a.Member));
        Receive<ReadyToProve>(_ =>
        {
            var from = Sender.Path.Address;
            foreach (var member in _pending.Keys.Where(m => m.Address == from).ToArray())
            {
                Timers.Cancel(member);
                Ask(member);
            }
        });
        Receive<Answered>(OnAnswered);
    }

    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberDowned), typeof(ClusterEvent.MemberRemoved));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Begin(Member member)
    {
        if (member.UniqueAddress == _cluster.SelfUniqueAddress || _settled.Contains(member.UniqueAddress) || _pending.ContainsKey(member.UniqueAddress)) return;
        _pending[member.UniqueAddress] = new Pending(member, DateTime.UtcNow, null);
        Ask(member.UniqueAddress);
    }

    /// <summary>A downed member is no host any more; a refused one stays refused until it is removed.</summary>
    private void Forget(UniqueAddress member, bool removed)
    {
        _pending.Remove(member);
        if (removed) _settled.Remove(member);
        Timers.Cancel(member);
        _proven.Forget(member, removed);
    }

    private void Ask(UniqueAddress member)
    {
        if (!_pending.TryGetValue(member, out var pending)) return;
        // A fresh nonce per attempt: an answer to an older one is ignored, and no answer can be replayed.
        var asked = new ProveIdentity(_self.ToString(), RandomNumberGenerator.GetBytes(32));
        _pending[member] = pending with { Asked = asked };
        var self = Self;
        Context.System.ActorSelection(member.Address + HostAgent.Path).Ask<object>(asked, _settings.AskTimeout)
            .ContinueWith(t => (object)new Answered(member, asked, t.IsCompletedSuccessfully ? t.Result : new Status.Failure(t.Exception?.GetBaseException() ?? new TimeoutException())),
                TaskContinuationOptions.ExecuteSynchronously)
            .PipeTo(self);
    }

    private void OnAnswered(Answered a)
    {
        if (!_pending.TryGetValue(a.Member, out var pending) || !ReferenceEquals(pending.Asked, a.Asked)) return;
        var member = pending.Member;
        var address = member.Address.ToString();
        var role = RoleHost(member);
        var roleText = member.Roles.FirstOrDefault(r => r.StartsWith(CloudFsConfig.HostRolePrefix, StringComparison.Ordinal)) ?? "(none)";
        if (a.Reply is not IdentityProof proof)
        {
            var why = a.Reply is Status.Failure f ? f.Cause.Message : a.Reply.GetType().Name;
            if (_tls is not null && DateTime.UtcNow - pending.Since > _settings.ProveWithin)
            {
                Refuse(member, $"member {address} with role {roleText} is downed and never treated as a host: it did not prove its identity within {_settings.ProveWithin.TotalSeconds:0} s ({why})");
                return;
            }
            _log.Debug("member {0}: no identity proof yet ({1}); asking again", address, why);
            Timers.StartSingleTimer(a.Member, new Attempt(a.Member), _settings.RetryInterval);
            return;
        }
        if (ProofCheck.Check(proof, a.Asked, address, role, _tls, out var reason) is { } host)
        {
            _pending.Remove(a.Member);
            _settled.Add(a.Member);
            _proven.Prove(a.Member, host);
            _log.Info("member {0} proved it is host {1}{2}", address, host.HostId, host.Certificate is null ? " (taken as reported: no TLS)" : " (certificate of the cluster authority)");
            return;
        }
        Refuse(member, $"member {address} with role {roleText} is not that host, so it is downed and never treated as a host: {reason}");
    }

    private void Refuse(Member member, string sentence)
    {
        _pending.Remove(member.UniqueAddress);
        _settled.Add(member.UniqueAddress);
        _proven.Refuse(member.UniqueAddress, sentence);
        _log.Error(sentence);
        _cluster.Down(member.Address);
    }

    /// <summary>The host id in the member's role "host:&lt;id&gt;"; null when it has none or a malformed one.</summary>
    internal static Id160? RoleHost(Member member) =>
        member.Roles.FirstOrDefault(r => r.StartsWith(CloudFsConfig.HostRolePrefix, StringComparison.Ordinal)) is { } role
        && Id160.TryParse(role[CloudFsConfig.HostRolePrefix.Length..], out var id) ? id : null;
}
