// The process's clock of report changes: every change to what a host reports about a volume (its head, view, writer,
// size, trash state, damage; a follower's progress) takes the next stamp, so the host answers placement's "what changed
// since stamp S" with only those, and an idle host answers with nothing.
namespace CloudFs.BlockDevice;

public static class ChangeClock
{
    private static long _now;

    /// <summary>The last stamp handed out: everything changed so far has a stamp at or below it (or is being stamped,
    /// see <see cref="Changing"/>).</summary>
    public static long Now => Volatile.Read(ref _now);

    /// <summary>A stamp after every one handed out before.</summary>
    public static long Next() => Interlocked.Increment(ref _now);

    /// <summary>Held by a thing while its stamp is being taken: above every stamp, so a reader that looks at it in that
    /// moment counts it as changed (a change is never missed between taking its stamp and storing it).</summary>
    public const long Changing = long.MaxValue;

    /// <summary>Stamps <paramref name="field"/>: first <see cref="Changing"/>, then the next stamp. A reader that read
    /// <see cref="Now"/> at or after the stamp sees the stamp or Changing, never the stamp before.</summary>
    public static void Stamp(ref long field)
    {
        Volatile.Write(ref field, Changing);
        Volatile.Write(ref field, Next());
    }
}
