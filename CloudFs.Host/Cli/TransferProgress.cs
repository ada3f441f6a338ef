// A progress line for `cloudfs stream` and `cloudfs apply` while stderr is a terminal: bytes so far, rate, and (when
// the total is known, e.g. `apply < file`) the share done and the time left. Redrawn in place at most four times a
// second; the last line stays. Nothing is written when stderr is not a terminal, so scripts and pipes see no change.
using System.Diagnostics;

namespace CloudFs.Host.Cli;

internal sealed class TransferProgress(TextWriter err, string what, long? total)
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _drawn = -Interval;
    private long _bytes;
    private int _width;

    /// <summary>A progress line for a transfer of <paramref name="total"/> bytes (null: unknown), or null when
    /// <paramref name="io"/>'s stderr is not a terminal.</summary>
    public static TransferProgress? For(CliIo io, string what, long? total) => io.ErrIsTerminal ? new TransferProgress(io.Err, what, total) : null;

    public void Add(int bytes)
    {
        Interlocked.Add(ref _bytes, bytes);
        if (_clock.Elapsed - _drawn >= Interval) Draw();
    }

    /// <summary>Draws the final figures and ends the line.</summary>
    public void Finish()
    {
        Draw();
        err.WriteLine();
        err.Flush();
    }

    internal string Line()
    {
        var bytes = Interlocked.Read(ref _bytes);
        var seconds = Math.Max(_clock.Elapsed.TotalSeconds, 0.001);
        var rate = bytes / seconds;
        var line = $"{what}: {SizeParser.Human(bytes)}";
        if (total is > 0 and var t)
        {
            line += $" of {SizeParser.Human(t)} ({Math.Min(100, bytes * 100 / t)}%)";
            if (rate > 0 && bytes < t) line += $", {SizeParser.Human(rate)}/s, {Eta((t - bytes) / rate)} left";
            else line += $", {SizeParser.Human(rate)}/s";
        }
        else line += $", {SizeParser.Human(rate)}/s";
        return line;
    }

    private static string Eta(double seconds)
    {
        var s = TimeSpan.FromSeconds(Math.Ceiling(Math.Min(seconds, 359_999)));
        return s.TotalHours >= 1 ? $"{(int)s.TotalHours}:{s:mm\\:ss}" : $"{s:m\\:ss}";
    }

    private void Draw()
    {
        _drawn = _clock.Elapsed;
        var line = Line();
        // Padding clears what a longer previous line left.
        err.Write("\r" + line.PadRight(_width));
        err.Flush();
        _width = line.Length;
    }
}
