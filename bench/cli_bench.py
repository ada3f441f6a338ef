#!/usr/bin/env python3
"""The management CLI and API (issues 14 and 15), in one run on real `./cloudfs node` processes:

1. latency: median wall time of `cloudfs ls`, `info`, `status` and `cluster show` (a process each, as an operator
   types them) against a 3-node cluster, side by side, alternating, with `curl` of the same HTTP endpoint (the floor
   a process per call can reach) and, with --against CHECKOUT, the other checkout's CLI against its own 3-node cluster;
2. a dead contact: time to fail for a loopback address with nothing listening and for an unknown host name;
3. creation: creates/s through POST /volumes on one node (--clients concurrent keep-alive HTTP clients, 1 replica);
4. listing at scale: `cloudfs ls | wc -l`, `ls --json` and `curl /volumes` at --volumes volumes on that node.

Addresses: 127.0.17.11-13 (the 3 nodes), 127.0.17.21-23 (the --against cluster), 127.0.17.31 (the one node).
Prints Markdown lines for BENCHMARKS.md.
"""
import argparse, http.client, json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY = re.compile(r"^cloudfs: node ([0-9a-f]{40}) ready")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def create_volumes(addr, count, clients=16):
    """Creates count // clients * clients 1-replica 1 MiB volumes through addr's POST /volumes with that many keep-alive
    clients; returns the volumes' JSON (id, primary, ...) and the seconds it took."""
    made, failures, lock = [], [], threading.Lock()

    def client(n):
        conn = http.client.HTTPConnection(addr, 8090, timeout=120)
        body = json.dumps({"replicas": 1, "size": "1M"})
        for _ in range(n):
            conn.request("POST", "/volumes", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status != 201:
                failures.append(f"{r.status} {data[:200]!r}")
                return
            with lock:
                made.append(json.loads(data))

    threads = [threading.Thread(target=client, args=(count // clients,)) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failures:
        raise RuntimeError(f"create failed: {failures[0]}")
    return made, time.perf_counter() - t


class Node:
    def __init__(self, repo, addr, device, seeds=None, size="2G"):
        self.repo, self.addr = repo, addr
        args = [os.path.join(repo, "cloudfs"), "node", "--listen", addr, "--device", device, "--size", size]
        if seeds:
            args += ["--seeds", seeds]
        self.out = open(device + ".out", "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.out, text=True)
        end = time.time() + 300
        for line in self.proc.stdout:
            if READY.match(line):
                break
            if time.time() > end:
                raise RuntimeError(f"node {addr} did not get ready")
        else:
            raise RuntimeError(f"node {addr} exited: see {device}.out")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def cli(repo, *args, check=True):
    r = subprocess.run([os.path.join(repo, "cloudfs"), *args], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise RuntimeError(f"cloudfs {' '.join(args)}: {r.stderr.strip()}")
    return r


def timed(argv):
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    return time.perf_counter() - t, r.returncode, r.stderr.strip()


def cluster(repo, addrs, work, name):
    nodes = []
    for i, a in enumerate(addrs):
        nodes.append(Node(repo, a, os.path.join(work, f"{name}{i}.log"), seeds=",".join(addrs)))
    end = time.time() + 120
    while "Count: 3" not in cli(repo, "cluster", "show", "--contact", addrs[0], check=False).stdout:
        if time.time() > end:
            raise RuntimeError(f"{name}: 3 members not seen within 120 s")
        time.sleep(0.5)
    return nodes


def dll(repo):
    """The built host, run with `dotnet` directly: the ./cloudfs script's staleness check is not part of a CLI call."""
    cli(repo, "--help")
    return ["dotnet", os.path.join(repo, "CloudFs.Host/bin/Release/net10.0/cloudfs.dll")]


def median_ms(xs):
    return f"{statistics.median(xs) * 1000:.0f} ms"


def latency(args, work):
    addrs = ["127.0.17.11", "127.0.17.12", "127.0.17.13"]
    nodes = cluster(REPO, addrs, work, "new")
    other = []
    try:
        if args.against:
            ref_addrs = ["127.0.17.21", "127.0.17.22", "127.0.17.23"]
            other = cluster(args.against, ref_addrs, work, "ref")
        vol = cli(REPO, "newdisk", "3", "--size", "64M", "--contact", addrs[0]).stdout.strip()
        ref_vol = cli(args.against, "newdisk", "3", "--size", "64M", "--contact", ref_addrs[0]).stdout.strip() if args.against else None
        new, ref = dll(REPO), dll(args.against) if args.against else None
        contact = addrs[1]
        commands = {
            "ls": (["ls", "--contact", contact], "volumes"),
            "info": (["info", vol, "--contact", contact], f"volumes/{vol}/info"),
            "status": (["status", "--contact", contact], "status"),
            "cluster show": (["cluster", "show", "--contact", contact], "cluster/members"),
        }
        times = {}
        for r in range(args.rounds):
            for name, (argv, path) in commands.items():
                runs = [("cloudfs", new + argv), ("curl", ["curl", "-sf", "--noproxy", "*", f"http://{contact}:8090/{path}"])]
                if ref and name != "status":
                    ref_argv = [a.replace(vol, ref_vol).replace(contact, ref_addrs[1]) for a in argv]
                    runs.append(("against", ref + ref_argv))
                if r % 2:
                    runs.reverse()
                for who, cmd in runs:
                    t, code, err = timed(cmd)
                    if code != 0:
                        raise RuntimeError(f"{' '.join(cmd)}: exit {code}: {err}")
                    times.setdefault((name, who), []).append(t)
        dead = {}
        for r in range(args.rounds):
            for what, target in [("refused", "127.0.17.250"), ("unknown host", "nosuchhost.invalid")]:
                # The cluster client waits ~20 s for a dead contact: the --against side is timed once.
                for who, base in [("cloudfs", new)] + ([("against", ref)] if ref and r == 0 else []):
                    t, code, err = timed(base + ["ls", "--contact", target])
                    assert code != 0, f"ls --contact {target} succeeded"
                    dead.setdefault((what, who), []).append(t)
        print(f"\n### CLI latency, 3 nodes (127.0.17.11-13), {args.rounds} rounds, median wall time of one process per call\n")
        print("| command | cloudfs (HTTP) | curl of the same endpoint | " + ("--against (cluster client) | ratio against/cloudfs |" if ref else ""))
        print("|---|---|---|" + ("---|---|" if ref else ""))
        for name in commands:
            row = f"| `cloudfs {name}` | {median_ms(times[(name, 'cloudfs')])} | {median_ms(times[(name, 'curl')])} |"
            if ref and (name, "against") in times:
                ratio = statistics.median(times[(name, 'against')]) / statistics.median(times[(name, 'cloudfs')])
                row += f" {median_ms(times[(name, 'against')])} | {ratio:.1f}x |"
            elif ref:
                row += " (no such command) | |"
            print(row)
        for what in ["refused", "unknown host"]:
            row = f"| `ls` on a dead contact ({what}) | {median_ms(dead[(what, 'cloudfs')])} | |"
            if ref:
                row += f" {median_ms(dead[(what, 'against')])} | |"
            print(row)
    finally:
        for n in nodes + other:
            n.stop()


def create_rate(args, work):
    node = Node(REPO, "127.0.17.31", os.path.join(work, "one.log"), size=args.log_size)
    try:
        rates = []
        total = 0
        step = args.volumes // args.steps
        print(f"\n### Creation through POST /volumes on one node (127.0.17.31), {args.clients} keep-alive clients, 1 replica, 1 MiB volumes\n")
        print("| volumes before | volumes created | creates/s |")
        print("|---|---|---|")
        for s in range(args.steps):
            created, elapsed = create_volumes("127.0.17.31", step, args.clients)
            rate = len(created) / elapsed
            rates.append(rate)
            print(f"| {total} | {len(created)} | {rate:.0f} |")
            total += len(created)
        new = dll(REPO)
        print(f"\n### Listing {total} volumes on that node ({args.rounds} rounds, median)\n")
        print("| command | wall time | lines/objects |")
        print("|---|---|---|")
        for name, argv in [("cloudfs ls", new + ["ls", "--contact", "127.0.17.31"]),
                           ("cloudfs ls --json", new + ["ls", "--json", "--contact", "127.0.17.31"]),
                           ("curl /volumes", ["curl", "-sf", "--noproxy", "*", "http://127.0.17.31:8090/volumes"])]:
            ts = []
            count = 0
            for _ in range(args.rounds):
                t = time.perf_counter()
                r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
                ts.append(time.perf_counter() - t)
                if r.returncode != 0:
                    raise RuntimeError(f"{name}: {r.stderr.strip()}")
                count = len(r.stdout.splitlines()) if name == "cloudfs ls" else len(json.loads(r.stdout))
            print(f"| `{name}` | {median_ms(ts)} | {count} |")
    finally:
        node.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--against", help="another checkout (its CLI before this change: ClusterClient) for the latency A/B")
    p.add_argument("--volumes", type=int, default=10000, help="volumes to create on the one node")
    p.add_argument("--steps", type=int, default=5, help="creation is measured in this many equal steps")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--log-size", default="16G")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-create", action="store_true")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="cloudfs-cli-bench-")
    try:
        if not args.skip_latency:
            latency(args, work)
        if not args.skip_create:
            create_rate(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
