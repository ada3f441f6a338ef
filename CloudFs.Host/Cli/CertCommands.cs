// `cloudfs cert init | issue | show`: the cluster's certificate authority and the certificate directories it issues
// (node certificates with a host id and addresses, operator certificates for the CLI), in the layout qemu and libnbd read.
using System.CommandLine;
using System.Globalization;
using CloudFs.Actors.Security;
using CloudFs.BlockDevice;

namespace CloudFs.Host.Cli;

internal static class CertCommands
{
    public static Command Create(CliIo io)
    {
        var cert = new Command("cert", "The cluster's certificate authority: create it, issue node and operator certificates (docs/SECURITY.md).");
        cert.Subcommands.Add(Init(io));
        cert.Subcommands.Add(Issue(io));
        cert.Subcommands.Add(Show(io));
        return cert;
    }

    private static Option<int?> Days(string description) => new("--days")
    {
        Description = description,
        HelpName = "N",
        CustomParser = r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var days) && days is > 0 and <= 36500) return days;
            r.AddError($"'{text}' is not a number of days (1-36500)");
            return null;
        },
    };

    private static Command Init(CliIo io)
    {
        var dir = new Argument<string>("DIR") { Description = "Where to create the authority (ca-cert.pem, ca-key.pem); created when missing" };
        var days = Days($"How long the authority is valid [default: {ClusterAuthority.DefaultAuthorityLifetime.TotalDays:0}]");
        var command = new Command("init", "Create a cluster certificate authority in DIR. Refuses a DIR that already holds one.") { dir, days };
        command.SetAction(async (parse, ct) =>
        {
            var lifetime = parse.GetValue(days) is { } d ? TimeSpan.FromDays(d) : (TimeSpan?)null;
            using var authority = ClusterAuthority.Create(parse.GetValue(dir)!, lifetime);
            await io.Out.WriteLineAsync($"created the cluster authority '{authority.Certificate.Subject}' in {authority.Directory}, valid until {authority.Certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}");
            await io.Err.WriteLineAsync($"cloudfs: keep {Path.Combine(authority.Directory, CertificateFiles.AuthorityKey)} secret and off the nodes: whoever holds it can issue certificates for any host");
            return 0;
        });
        return command;
    }

    private static Command Issue(CliIo io)
    {
        var dir = new Argument<string>("DIR") { Description = "The authority's directory (from `cloudfs cert init`)" };
        var hostId = new Option<Id160?>("--host-id")
        {
            Description = "A node certificate for this host id (the node's --host-id, or the one in its device header)",
            HelpName = "HEX40",
            CustomParser = r => CliOptions.Id(r, "host id"),
        };
        var addresses = new Option<string[]>("--addr")
        {
            Description = "The node's addresses clients connect to (its --listen), IPs or host names, comma-separated",
            HelpName = "IP[,IP...]",
            AllowMultipleArgumentsPerToken = false,
            CustomParser = r => r.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray(),
        };
        var client = new Option<string?>("--client")
        {
            Description = "An operator certificate with this name (for the CLI and qemu), instead of a node's",
            HelpName = "NAME",
        };
        var output = new Option<string>("--out")
        {
            Description = "The certificate directory to write (ca-cert.pem, server-/client-cert.pem and -key.pem); created when missing",
            HelpName = "DIR2",
            Required = true,
        };
        var days = Days($"How long the certificate is valid [default: {ClusterAuthority.DefaultCertificateLifetime.TotalDays:0}, never past the authority]");
        var command = new Command("issue", "Issue a node certificate (--host-id and --addr) or an operator certificate (--client NAME) signed by the authority in DIR, into --out DIR2.")
        {
            dir, hostId, addresses, client, output, days,
        };
        command.Validators.Add(r =>
        {
            var node = r.GetResult(hostId) is not null;
            var named = r.GetResult(client) is not null;
            if (node == named) r.AddError("give either --host-id (with --addr) for a node or --client NAME for an operator");
            else if (node && r.GetResult(addresses) is null) r.AddError("a node certificate needs --addr, the addresses the node listens on");
            else if (named && r.GetResult(addresses) is not null) r.AddError("an operator certificate names no addresses; drop --addr");
        });
        command.SetAction(async (parse, ct) =>
        {
            var lifetime = parse.GetValue(days) is { } d ? TimeSpan.FromDays(d) : (TimeSpan?)null;
            using var authority = ClusterAuthority.Open(parse.GetValue(dir)!);
            var target = Path.GetFullPath(parse.GetValue(output)!);
            ClusterCertificate issued;
            if (parse.GetValue(hostId) is { } host)
            {
                using var certificate = authority.IssueNode(host, parse.GetValue(addresses) ?? [], lifetime);
                issued = authority.WriteNodeDirectory(target, certificate);
            }
            else
            {
                using var certificate = authority.IssueOperator(parse.GetValue(client)!, lifetime);
                issued = authority.WriteOperatorDirectory(target, certificate);
            }
            await io.Out.WriteLineAsync($"issued {Describe(issued)} into {target}");
            return 0;
        });
        return command;
    }

    private static Command Show(CliIo io)
    {
        var dir = new Argument<string>("DIR") { Description = "A certificate directory (a node's or an operator's)" };
        var command = new Command("show", "Print whom the certificate in DIR names and check it against the authority in DIR.") { dir };
        command.SetAction(async (parse, ct) =>
        {
            using var tls = ClusterTls.Load(parse.GetValue(dir)!);
            await io.Out.WriteLineAsync(Describe(tls.Identity));
            return 0;
        });
        return command;
    }

    /// <summary>"host &lt;id&gt; (addresses …), issued by …, valid until yyyy-mm-dd".</summary>
    private static string Describe(ClusterCertificate c)
    {
        var names = c.Addresses.Select(a => a.ToString()).Concat(c.DnsNames).ToArray();
        var where = names.Length > 0 ? $" ({string.Join(", ", names)})" : "";
        return $"{c}{where}, issued by '{c.Issuer}', valid until {c.NotAfter:yyyy-MM-dd}";
    }
}
