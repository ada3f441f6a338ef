// FsCheck: random writes, replica-set changes, failovers, follows with fork splits and restarts on two hosts; the view
// (number, view id, replica set) a host holds live, after a crash and from a checkpoint always equals the model's.
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace CloudFs.Tests.Engine;

public sealed class ViewProperties
{
    [Property(MaxTest = 30)]
    public Property Live_recovered_and_checkpointed_state_agree_on_the_view_through_failovers_and_fork_splits() =>
        Prop.ForAll(Arb.From(ViewScenario.Ops(maxOps: 20)), ops =>
        {
            var scenario = new ViewScenario();
            try { scenario.RunAsync(ops).GetAwaiter().GetResult(); }
            finally { scenario.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        });
}
