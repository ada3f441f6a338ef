// Validates docker-compose.yml with Debian's docker-compose 1.29 (`config` needs no Docker engine): the file parses,
// and it describes three nodes that each listen on their own address and list all three as seeds (SPEC.md), with TLS
// from certificates a one-shot service makes before they start (docs/SECURITY.md), and a /ready healthcheck each; and
// the image's entry point (docker/entrypoint.sh) with stand-ins for the commands it runs.
namespace CloudFs.Tests.EndToEnd;

public sealed class ComposeFileTests
{
    private static string ComposeFile => Path.Combine(Repo.Root, "docker-compose.yml");

    [Fact]
    public async Task Compose_file_is_valid_for_docker_compose()
    {
        var result = await Tool.RunAsync("docker-compose", ["-f", ComposeFile, "config", "-q"], TimeSpan.FromSeconds(60));
        Assert.True(result.Code == 0, $"docker-compose rejects docker-compose.yml:\n{result}");
        Assert.Equal("", result.Err.Trim());
    }

    [Fact]
    public async Task Compose_file_runs_three_nodes_each_seeded_with_all_three()
    {
        var result = (await Tool.RunAsync("docker-compose", ["-f", ComposeFile, "config"], TimeSpan.FromSeconds(60))).AssertOk();
        var services = ComposeServices.Parse(result.Out).Where(s => s.Command.FirstOrDefault() == "node").ToList();
        Assert.True(services.Count == 3, $"expected three node services, found {services.Count}:\n{result.Out}");

        var listens = new List<string>();
        foreach (var s in services)
        {
            Assert.True(s.Command.Count > 0 && s.Command[0] == "node", $"{s.Name}: the command must be `cloudfs node ...`, is [{string.Join(' ', s.Command)}]");
            var listen = s.Option("--listen");
            Assert.True(listen is not null, $"{s.Name}: no --listen in [{string.Join(' ', s.Command)}]");
            Assert.True(s.Addresses.Contains(listen), $"{s.Name}: listens on {listen} but its network address is [{string.Join(',', s.Addresses)}]");
            listens.Add(listen!);
            var device = s.Option("--device");
            Assert.True(device is not null && device.StartsWith("/data/", StringComparison.Ordinal), $"{s.Name}: its log must be under /data, is {device}");
            Assert.True(s.Volumes.Any(v => v.Split(':') is [_, "/data", ..]), $"{s.Name}: no volume mounted at /data: [{string.Join(", ", s.Volumes)}]");
            Assert.True(s.Ports.Count > 0, $"{s.Name}: publishes no ports");
        }
        Assert.Equal(3, listens.Distinct().Count());
        foreach (var s in services)
        {
            var seeds = s.Option("--seeds");
            Assert.True(seeds is not null, $"{s.Name}: no --seeds in [{string.Join(' ', s.Command)}]");
            var listed = seeds!.Split(',').Select(a => a.Split(':')[0]).Order().ToArray();
            Assert.True(listed.SequenceEqual(listens.Order()), $"{s.Name}: --seeds {seeds} must list all three nodes ({string.Join(',', listens)})");
        }
    }

    [Fact]
    public async Task Compose_file_runs_the_nodes_with_TLS_from_certificates_a_one_shot_service_makes_first()
    {
        var result = (await Tool.RunAsync("docker-compose", ["-f", ComposeFile, "config"], TimeSpan.FromSeconds(60))).AssertOk();
        var all = ComposeServices.Parse(result.Out);
        var nodes = all.Where(s => s.Command.FirstOrDefault() == "node").ToList();
        var oneShots = all.Except(nodes).ToList();
        var certs = Assert.Single(oneShots);
        var script = string.Join(' ', certs.Entrypoint.Concat(certs.Command));
        Assert.Contains("cert init /ca", script);
        Assert.Contains("cert issue /ca --client", script);
        Assert.True(certs.Volumes.Any(v => v.StartsWith("ca:/ca", StringComparison.Ordinal)) && certs.Volumes.Any(v => v.StartsWith("certs:/certs", StringComparison.Ordinal)),
            $"{certs.Name} must write into the volumes ca and certs: [{string.Join(", ", certs.Volumes)}]");
        // Made once: a second run keeps what the first made (cert init refuses an existing authority).
        Assert.Contains("[ -f /ca/ca-cert.pem ] ||", script);

        foreach (var node in nodes)
        {
            var tls = node.Option("--tls");
            Assert.True(tls is not null && tls.StartsWith("/certs/", StringComparison.Ordinal), $"{node.Name}: no --tls /certs/... in [{string.Join(' ', node.Command)}]");
            Assert.Contains($"--out /certs/{tls!["/certs/".Length..].Replace(node.Name, "node$$n", StringComparison.Ordinal)}", script);
            // The certificate names the node's address: the loop's n is the node's number, its address's last digit.
            var listen = node.Option("--listen")!;
            Assert.EndsWith(node.Name[^1..], listen);
            Assert.Contains($"--addr \"{listen[..^1]}$$n,", script);
            Assert.Equal("service_completed_successfully", node.DependsOn.GetValueOrDefault(certs.Name));
            Assert.Contains("certs:/certs:ro", node.Volumes);
            Assert.DoesNotContain(node.Volumes, v => v.StartsWith("ca:", StringComparison.Ordinal)); // the authority's key stays off the nodes
            Assert.DoesNotContain("--insecure", node.Command);
        }
    }

    [Fact]
    public async Task Compose_file_probes_each_nodes_ready_endpoint_over_https_checked_against_the_authority()
    {
        var result = (await Tool.RunAsync("docker-compose", ["-f", ComposeFile, "config"], TimeSpan.FromSeconds(60))).AssertOk();
        foreach (var node in ComposeServices.Parse(result.Out).Where(s => s.Command.FirstOrDefault() == "node"))
        {
            Assert.True(node.Healthcheck.Count == 2 && node.Healthcheck[0] == "CMD-SHELL", $"{node.Name}: healthcheck [{string.Join(", ", node.Healthcheck)}]");
            var probe = node.Healthcheck[1];
            Assert.Contains("curl -fsS --cacert /certs/", probe);
            Assert.Contains("https://", probe);
            Assert.EndsWith(":8090/ready", probe);
        }
    }

    [Fact]
    public async Task The_images_cloudfs_contacts_the_node_on_the_containers_address_unless_told_another()
    {
        // docker/cloudfs with a `dotnet` and a `hostname` that print what they were asked (no Docker engine here): the
        // node listens on the container's address, so `docker exec CONTAINER cloudfs ls` must ask there, not 127.0.0.1.
        using var dir = new TempDir();
        File.WriteAllText(dir.File("dotnet"), "#!/bin/sh\necho \"$CLOUDFS_CONTACT dotnet $*\"\n");
        File.WriteAllText(dir.File("hostname"), "#!/bin/sh\necho '172.17.0.5 fd00::5'\n");
        (await Tool.RunAsync("chmod", ["755", dir.File("dotnet"), dir.File("hostname")], TimeSpan.FromSeconds(10))).AssertOk();
        var script = Path.Combine(Repo.Root, "docker", "cloudfs");
        var path = $"{dir.Path}:{Environment.GetEnvironmentVariable("PATH")}";

        var own = (await Tool.RunAsync("env", ["-u", "CLOUDFS_CONTACT", "PATH=" + path, "sh", script, "ls", "--json"], TimeSpan.FromSeconds(10))).AssertOk();
        Assert.Equal("172.17.0.5 dotnet /app/cloudfs.dll ls --json", own.Out.Trim());
        var told = (await Tool.RunAsync("env", ["CLOUDFS_CONTACT=node2", "PATH=" + path, "sh", script, "ls"], TimeSpan.FromSeconds(10))).AssertOk();
        Assert.Equal("node2 dotnet /app/cloudfs.dll ls", told.Out.Trim());
    }

    [Fact]
    public async Task The_images_entry_point_runs_one_node_on_the_containers_address_and_passes_commands_through()
    {
        // docker/entrypoint.sh with a `cloudfs` and a `hostname` that print what they were asked (no Docker engine here).
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cloudfs"), "#!/bin/sh\necho \"cloudfs $*\"\n");
        File.WriteAllText(dir.File("hostname"), "#!/bin/sh\necho '172.17.0.5 fd00::5'\n");
        (await Tool.RunAsync("chmod", ["755", dir.File("cloudfs"), dir.File("hostname")], TimeSpan.FromSeconds(10))).AssertOk();
        var script = Path.Combine(Repo.Root, "docker", "entrypoint.sh");
        var path = $"{dir.Path}:{Environment.GetEnvironmentVariable("PATH")}";

        var plain = (await Tool.RunAsync("env", ["PATH=" + path, "sh", script], TimeSpan.FromSeconds(10))).AssertOk();
        Assert.Equal("cloudfs node --device /data/cloudfs.log --listen 172.17.0.5 --insecure", plain.Out.Trim());
        var passed = (await Tool.RunAsync("env", ["PATH=" + path, "sh", script, "ls", "--json"], TimeSpan.FromSeconds(10))).AssertOk();
        Assert.Equal("cloudfs ls --json", passed.Out.Trim());
        Assert.Contains("exec dotnet /app/cloudfs.dll \"$@\"", File.ReadAllText(Path.Combine(Repo.Root, "docker", "cloudfs")));
        var dockerfile = File.ReadAllText(Path.Combine(Repo.Root, "Dockerfile"));
        Assert.Contains("COPY docker/cloudfs docker/entrypoint.sh /usr/local/bin/", dockerfile);
        Assert.Contains("ENTRYPOINT [\"entrypoint.sh\"]", dockerfile);
    }
}
