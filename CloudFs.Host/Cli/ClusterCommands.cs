// `cloudfs cluster …` and `cloudfs sharding …`: the Petabridge.Cmd-style inspection commands, answered by the node's
// management API (ManagementRoutes: /cluster/…, /sharding/…).
using System.CommandLine;
using System.Net.Http;
using System.Text.Json;
using CloudFs.Actors.Management;

namespace CloudFs.Host.Cli;

internal static class ClusterCommands
{
    public static IEnumerable<Command> Create(CliIo io)
    {
        var cluster = new Command("cluster", "Inspect and change cluster membership.");
        cluster.Subcommands.Add(Show(io));
        cluster.Subcommands.Add(Verb(io, "leader", "Print the cluster leader's address."));
        cluster.Subcommands.Add(Verb(io, "status", "Print this cluster's status as the contacted node sees it."));
        cluster.Subcommands.Add(Verb(io, "down-unreachable", "Mark every unreachable member down."));
        cluster.Subcommands.Add(AddressVerb(io, "join", "Make the contacted node join the cluster at ADDR."));
        cluster.Subcommands.Add(AddressVerb(io, "leave", "Make the member at ADDR leave the cluster gracefully."));
        cluster.Subcommands.Add(AddressVerb(io, "down", "Mark the member at ADDR down."));
        yield return cluster;

        var sharding = new Command("sharding", "Inspect cluster sharding (where volumes' entities live).");
        sharding.Subcommands.Add(Sharding(io, "regions", "List the shard regions."));
        sharding.Subcommands.Add(Sharding(io, "stats", "Print shard and entity counts per region."));
        yield return sharding;
    }

    internal static IEnumerable<string> ShowLines(ClusterMembers members)
    {
        foreach (var m in members.Members)
        {
            var roles = m.Roles.Count == 0 ? "-" : string.Join(',', m.Roles);
            yield return $"{m.Address} {roles} {m.Status} {m.Reachability} {(string.IsNullOrEmpty(m.HostId) ? "-" : m.HostId)}";
        }
        yield return $"Count: {members.Members.Count}";
    }

    private static Command Show(CliIo io)
    {
        var json = VolumeCommands.Json("Print the members as JSON (members: address, roles, status, reachability, host_id; leader; self_address)");
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command("show", "One line per member (address, roles, status, reachability, host id), then Count: N.") { json, contact, tls };
        command.SetAction(async (parse, ct) =>
        {
            using var client = ManagementHttpClient.Create(parse.GetValue(contact)!, parse.GetValue(tls));
            var members = await client.GetAsync<ClusterMembers>("cluster/members", ct);
            if (parse.GetValue(json)) await io.Out.WriteLineAsync(JsonSerializer.Serialize(members, ManagementJson.Options));
            else foreach (var line in ShowLines(members)) await io.Out.WriteLineAsync(line);
            return 0;
        });
        return command;
    }

    private static Command Verb(CliIo io, string verb, string description)
    {
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command(verb, description) { contact, tls };
        // The inspecting verbs print data, so they take --json; the changing ones print what they did.
        var inspects = verb is "leader" or "status";
        var json = inspects ? VolumeCommands.Json(verb == "leader" ? "Print {\"leader\": address or null}" : "Print {\"address\", \"status\"} of the contacted node") : null;
        if (json is not null) command.Options.Add(json);
        var method = inspects ? HttpMethod.Get : HttpMethod.Post;
        command.SetAction((parse, ct) => Print(io, parse.GetValue(contact)!, parse.GetValue(tls), method, $"cluster/{verb}", json is not null && parse.GetValue(json), ct));
        return command;
    }

    private static Command AddressVerb(CliIo io, string verb, string description)
    {
        var address = new Argument<string>("ADDR") { Description = "The member, IP[:PORT] or its full akka address" };
        address.Validators.Add(r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
            if (!text.Contains("://", StringComparison.Ordinal) && !AddressParser.TryParse(text, CliOptions.DefaultAkkaPort, out _))
                r.AddError($"'{text}' is not a member address (IP[:PORT], or akka.tcp://cloudfs@IP:PORT, akka.ssl.tcp:// with TLS)");
        });
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var command = new Command(verb, description) { address, contact, tls };
        command.SetAction((parse, ct) =>
        {
            var text = parse.GetValue(address)!;
            var normalized = text.Contains("://", StringComparison.Ordinal) || !AddressParser.TryParse(text, CliOptions.DefaultAkkaPort, out var ep)
                ? text
                : AddressParser.Format(ep);
            return Print(io, parse.GetValue(contact)!, parse.GetValue(tls), HttpMethod.Post, $"cluster/{verb}?address={Uri.EscapeDataString(normalized)}", false, ct);
        });
        return command;
    }

    private static Command Sharding(CliIo io, string verb, string description)
    {
        var contact = CliOptions.Contact();
        var tls = CliOptions.Tls();
        var json = VolumeCommands.Json(verb == "regions"
            ? "Print the regions as a JSON array of {type, address}"
            : "Print a JSON array of {type, address, entities, shards: [{shard, entities}]}");
        var command = new Command(verb, description) { json, contact, tls };
        command.SetAction((parse, ct) => Print(io, parse.GetValue(contact)!, parse.GetValue(tls), HttpMethod.Get, $"sharding/{verb}", parse.GetValue(json), ct));
        return command;
    }

    private static async Task<int> Print(CliIo io, IReadOnlyList<NodeContact> contacts, string? tlsDirectory, HttpMethod method, string path,
        bool json, CancellationToken ct)
    {
        using var client = ManagementHttpClient.Create(contacts, tlsDirectory);
        using var response = await client.SendAsync(method, path, null, ct);
        var output = await JsonSerializer.DeserializeAsync<CommandOutput>(await response.Content.ReadAsStreamAsync(ct), ManagementJson.Options, ct)
                     ?? throw new CliException($"the node answered {path} with an empty body");
        var text = json ? output.Json ?? throw new CliException($"the node answered {path} without its JSON form (a node older than this CLI?)") : output.Text;
        await io.Out.WriteAsync(text.EndsWith('\n') ? text : text + "\n");
        return 0;
    }
}
