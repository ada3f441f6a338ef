// `cloudfs ls` and `cloudfs trash ls` on a terminal: a table with headers and human sizes (Spectre.Console). Host ids
// and versions are shortened to their first 8 and 12 hex digits there, as `git log --oneline` does; the full ids
// are in the plain lines (piped) and in --json.
using CloudFs.Actors.Management;
using Spectre.Console;

namespace CloudFs.Host.Cli;

internal static class VolumeTable
{
    private static string Short(string? id, int length) => string.IsNullOrEmpty(id) ? "-" : id.Length <= length ? id : id[..length];

    public static void WriteVolumes(CliIo io, IReadOnlyList<VolumeSummary> volumes)
    {
        var table = New("ID", "NAME", "SIZE", "MODE", "HEALTH", "PRIMARY", "REPLICAS", "PARENT");
        foreach (var v in volumes)
            table.AddRow(Cells(v.Id, v.Name ?? "-", SizeParser.Human(v.Size), VolumeListFormat.Mode(v.Mode), VolumeHealth.Describe(v),
                Short(v.Primary, 8), string.Join(',', v.Replicas.Select(r => Short(r, 8))), Short(v.Parent, 12)));
        Write(io, table, volumes.Count, "volume");
    }

    public static void WriteTrash(CliIo io, IReadOnlyList<VolumeSummary> volumes)
    {
        var table = New("ID", "NAME", "SIZE", "REMOVED (UTC)");
        foreach (var v in volumes)
            table.AddRow(Cells(v.Id, v.Name ?? "-", SizeParser.Human(v.Size),
                DateTimeOffset.FromUnixTimeMilliseconds(v.TrashedAtUnixMs).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)));
        Write(io, table, volumes.Count, "volume in the trash", "volumes in the trash");
    }

    private static Table New(params string[] headers)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (var h in headers) table.AddColumn(new TableColumn(h).NoWrap());
        return table;
    }

    // Text from the cluster is never taken as markup.
    private static Text[] Cells(params string[] values) => values.Select(v => new Text(v)).ToArray();

    private static void Write(CliIo io, Table table, int count, string one, string? many = null)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(io.Out),
            Interactive = InteractionSupport.No,
        });
        // The table's own width, never cut to the terminal's: an id cut short is no use, and a terminal that is too
        // narrow wraps the lines as it does kubectl's.
        console.Profile.Width = 4096;
        table.Caption($"{count} {(count == 1 ? one : many ?? one + "s")}");
        console.Write(table);
    }
}
