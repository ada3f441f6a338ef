// The engine's log lines ("engine: formatted ...", "engine: recovered ..."), which begin before the node's logger
// exists: the node opens its device before its actor system (a refused device then binds no port), so the lines of
// that open wait here and go to the node's logger, in order, once it is attached; later ones go straight to it.
using Akka.Event;

namespace CloudFs.Actors.Node;

internal sealed class EngineLogLines
{
    private readonly object _gate = new();
    private readonly List<(bool Error, string Message)> _early = [];
    private ILoggingAdapter? _log;

    public void Info(string message) => Write(false, message);

    public void Error(string message) => Write(true, message);

    /// <summary>From now on the lines go to <paramref name="log"/>; the ones written before go there first.</summary>
    public void Attach(ILoggingAdapter log)
    {
        lock (_gate)
        {
            foreach (var (error, message) in _early) Emit(log, error, message);
            _early.Clear();
            _log = log;
        }
    }

    private void Write(bool error, string message)
    {
        lock (_gate)
        {
            if (_log is null) _early.Add((error, message));
            else Emit(_log, error, message);
        }
    }

    private static void Emit(ILoggingAdapter log, bool error, string message)
    {
        if (error) log.Error("engine: {0}", message);
        else log.Info("engine: {0}", message);
    }
}
