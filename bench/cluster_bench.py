#!/usr/bin/env python3
"""Cluster benchmarks (issue 4), in one run: fio over NBD on a one-node volume and on a 3-node cluster's sync and async
volumes (ratios to the one-node figure of the same run), failover time after kill -9 of a sync volume's primary, of the
host that runs the placement singleton (and a sync volume's primary), and of a replica, and catch-up throughput of a
replica that missed 1 GiB. The tests check that these failovers happen; the times (goal: 10 s) are measured here.

Real `./cloudfs node` processes: the one-node cluster on 127.0.0.54, the 3-node cluster on 127.0.0.51-53, default
ports. Every node is killed at the end (also on Ctrl-C). Prints Markdown lines for BENCHMARKS.md.
"""
import argparse, datetime, json, os, re, shutil, signal, ssl, statistics, subprocess, sys, tempfile, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_bench as nb  # noqa: E402  (fio runner and shapes shared with the one-node benchmark)

REPO = nb.REPO
CLOUDFS = os.path.join(REPO, "cloudfs")
ONE = "127.0.0.54"
THREE = ["127.0.0.51", "127.0.0.52", "127.0.0.53"]
READY = re.compile(r"^cloudfs: node ([0-9a-f]{40}) ready")
CAUGHT_UP = re.compile(r"(?:caught up|full resync).*?(\d+) bytes.*? in ([0-9.]+) s")
SINGLETON = "placement service started on this member"
CRASH_DOWN = "its process is gone; quarantining and downing it"  # the crash detector's line
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z ")
# Set by make_certificates: every Node started afterwards runs with --tls, HTTP is HTTPS and NBD URIs are nbds://.
TLS = None


def make_certificates(work, addrs):
    """A cluster authority in WORK/ca, a node certificate per address (WORK/tls/ADDR) and an operator's (WORK/tls/bench),
    which the CLI (CLOUDFS_TLS), HTTP requests and NBD clients present from then on."""
    global TLS
    cert = lambda *a: subprocess.run([CLOUDFS, "cert", *a], check=True, capture_output=True, cwd=REPO)
    cert("init", os.path.join(work, "ca"))
    nodes = {}
    for i, addr in enumerate(addrs):
        nodes[addr] = os.path.join(work, "tls", addr)
        cert("issue", os.path.join(work, "ca"), "--host-id", f"be0c{i + 1:036x}", "--addr", addr, "--out", nodes[addr])
    client = os.path.join(work, "tls", "bench")
    cert("issue", os.path.join(work, "ca"), "--client", "bench", "--out", client)
    context = ssl.create_default_context(cafile=os.path.join(client, "ca-cert.pem"))
    context.check_hostname = False  # a node's identity is its host id; the address is not what is checked here
    context.load_cert_chain(os.path.join(client, "client-cert.pem"), os.path.join(client, "client-key.pem"))
    os.environ["CLOUDFS_TLS"] = client
    TLS = {"nodes": nodes, "client": client, "context": context}


HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User plus system CPU time of a process so far, in seconds (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read()
    fields = fields[fields.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def thread_cpu_seconds(pid):
    """CPU seconds so far per thread of a process: {tid: (thread name, seconds)}."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = (stat[stat.index("(") + 1:stat.rindex(")")], (int(fields[11]) + int(fields[12])) / HZ)
    return out


def build_runner(directory, tool):
    """A `cloudfs` script that runs the build in DIRECTORY (a copy of CloudFs.Host/bin/Release/net10.0), for A/B runs;
    exits with TOOL's message when the directory holds no build."""
    if not os.path.isfile(os.path.join(directory, "cloudfs.dll")):
        sys.exit(f"{tool}: {directory} holds no cloudfs.dll")
    runner = os.path.join(tempfile.mkdtemp(prefix=f"cloudfs-{tool}-"), "cloudfs")
    with open(runner, "w") as f:
        f.write(f'#!/bin/sh\nexec dotnet "{os.path.abspath(directory)}/cloudfs.dll" "$@"\n')
    os.chmod(runner, 0o755)
    return runner


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Node:
    """One `./cloudfs node` process; its output goes to a file and is scanned for the ready line."""

    def __init__(self, addr, device, size, seeds, logdir, config=None, prefix=(), extra=()):
        self.addr, self.device, self.size, self.seeds, self.logdir = addr, device, size, seeds, logdir
        self.config = config
        self.prefix, self.extra = list(prefix), list(extra)  # e.g. `ip netns exec NS` before, `--insecure` after
        self.proc = None
        self.host_id = None
        self.lines = []
        self.generation = 0

    def start(self, timeout=300):
        self.generation += 1
        out = open(os.path.join(self.logdir, f"{self.addr}.{self.generation}.log"), "w")
        cmd = [*self.prefix, CLOUDFS, "node", "--listen", self.addr, "--device", self.device, "--size", self.size, *self.extra]
        if self.seeds:
            cmd += ["--seeds", ",".join(self.seeds)]
        if self.config:
            cmd += ["--config", self.config]
        if TLS:
            cmd += ["--tls", TLS["nodes"][self.addr]]
        self.started_at = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        ready = threading.Event()
        self.lines = []

        def pump(proc, lines):
            for line in proc.stdout:
                out.write(line)
                out.flush()
                lines.append(line)
                m = READY.match(line)
                if m:
                    self.host_id = m.group(1)
                    ready.set()
            out.close()

        threading.Thread(target=pump, args=(self.proc, self.lines), daemon=True).start()
        end = time.time() + timeout
        while not ready.wait(0.1):
            if self.proc.poll() is not None or time.time() > end:
                raise RuntimeError(f"node {self.addr} did not get ready:\n{''.join(self.lines[-30:])}")
        self.ready_at = time.time()
        return self

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill9()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def http(self, path, timeout=10):
        scheme, context = ("https", TLS["context"]) if TLS else ("http", None)
        with urllib.request.urlopen(f"{scheme}://{self.addr}:8090{path}", timeout=timeout, context=context) as r:
            return r.read().decode()

    def head(self, volume):
        for line in self.http("/heads").splitlines():
            if line.startswith(volume + ":"):
                return line
        return None

    def metric(self, name):
        """Sum of a Prometheus metric's samples (all labels) on this node."""
        total = 0.0
        for line in self.http("/metrics").splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def nbd(self, volume):
        """The volume's NBD URI (libnbd's; fio's nbd engine takes only nbd://, so with TLS it is for libnbd clients)."""
        if TLS:
            return f"nbds://{self.addr}:10809/{volume}?tls-certificates={TLS['client']}"
        return f"nbd://{self.addr}:10809/{volume}"


def cli(*args, timeout=120):
    r = subprocess.run([CLOUDFS, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if r.returncode != 0:
        raise RuntimeError(f"cloudfs {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def until(cond, timeout, what, every=0.2):
    end = time.time() + timeout
    while True:
        try:
            if cond():
                return
        except Exception:  # a node that is starting or down answers with an error: keep polling
            pass
        if time.time() > end:
            raise RuntimeError(f"not reached within {timeout} s: {what}")
        time.sleep(every)


def members_up(contact, n):
    out = cli("cluster", "show", "--contact", contact, timeout=30)
    return f"Count: {n}" in out and sum(1 for l in out.splitlines() if " Up " in f" {l} ") == n \
        and "Unreachable" not in out


def primary_of(volume, contact):
    for v in json.loads(cli("ls", "--json", "--contact", contact)):
        if v["id"] == volume:
            return v["primary"]
    raise RuntimeError(f"volume {volume} is not listed")


def qemu_write(uri, cmd, timeout=20):
    try:
        r = subprocess.run(["qemu-io", "-f", "raw", "-c", cmd, uri], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and "wrote" in r.stdout


def fio_measured(node, uri, shape, size, runtime):
    """One fio run, plus the serving node's own mean write latency over it (cloudfs_write_latency_seconds)."""
    s0, c0 = node.metric("cloudfs_write_latency_seconds_sum"), node.metric("cloudfs_write_latency_seconds_count")
    try:
        res = nb.fio(uri, shape, size, runtime)
    except RuntimeError as e:  # a failed run counts as 0 and the benchmark goes on: the table says how many failed
        log(str(e))
        res = {"iops": 0.0, "mbps": 0.0, "p99_us": 0.0, "failed": True}
    s1, c1 = node.metric("cloudfs_write_latency_seconds_sum"), node.metric("cloudfs_write_latency_seconds_count")
    res["node_write_ms"] = (s1 - s0) / (c1 - c0) * 1000 if c1 > c0 else 0.0
    return res


def heads_agree(nodes, volume):
    heads = [n.head(volume) for n in nodes]
    return heads[0] is not None and len(set(heads)) == 1 and not heads[0].startswith(f"{volume}:{volume}")


def dead_nodes(nodes):
    """Which nodes have exited, with their exit code (3: the split brain resolver downed it and it shut itself down)."""
    return ", ".join(f"{n.addr} exited with {n.proc.returncode}" for n in nodes if n.proc and n.proc.poll() is not None)


def newdisk3(size, mode, three, attempts=5):
    """`newdisk 3`, again after the members are Up when a member was briefly unreachable ("only 2 host(s) found"): on
    a loaded machine late heartbeats make members unreachable for a few seconds, which is setup noise here."""
    for attempt in range(attempts):
        try:
            return cli("newdisk", "3", "--size", size, "--mode", mode, "--contact", THREE[0]).strip()
        except RuntimeError as e:
            if attempt == attempts - 1 or "host(s) found" not in str(e):
                raise
            log(f"{e}; waiting for three members Up again")
            until(lambda: members_up(THREE[0], 3), 120, f"three members Up ({dead_nodes(three) or 'all alive'})")


def said_at(node, text):
    """When NODE (this process of it) logged lines containing TEXT, by their own time stamps (seconds since the epoch)."""
    return [datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
            for line in list(node.lines) if text in line for m in [STAMP.match(line)] if m]


def first_said(nodes, text, since):
    """Seconds from SINCE until the first of NODES logged TEXT (None while none has)."""
    times = [t for n in nodes for t in said_at(n, text) if t >= since]
    return min(times) - since if times else None


def singleton_host(three):
    """The live node that runs the placement singleton: of those that said so, the one that said it last."""
    said = [(max(said_at(n, SINGLETON)), n) for n in three if n.alive() and said_at(n, SINGLETON)]
    return max(said, key=lambda x: x[0])[1] if said else None


def singleton_failover(three, by_id, r):
    """kill -9 of the host that runs the placement singleton and the primary of a fresh sync volume (the slowest case
    of a primary's death: the singletons move before the volume can fail over). Seconds from the kill until (1) a
    survivor's crash detector downs it (not the failure detector), (2) a survivor starts the placement singleton (both by
    the time stamps of their log lines), (3) a write through a survivor is acknowledged; and whether the volume's
    primary was that host."""
    until(lambda: members_up(next(n.addr for n in three if n.alive()), 3), 120,
          f"three members Up ({dead_nodes(three) or 'all three processes alive'})")
    until(lambda: singleton_host(three) is not None, 60, "a node that says it runs the placement singleton")
    host = singleton_host(three)
    contact = next(n for n in three if n is not host)
    for _ in range(10):  # the primary is the host nearest a random key: one in three
        volume = newdisk3("64M", "sync", three)
        if by_id[primary_of(volume, contact.addr)] is host:
            break
    was_primary = by_id[primary_of(volume, contact.addr)] is host
    if not qemu_write(host.nbd(volume), "write -P 0x5a 0 1M", timeout=120):
        raise RuntimeError(f"a first write to {volume} through {host.addr} failed")
    ready_for_a_kill(three, volume)
    survivors = [n for n in three if n is not host]
    marks = {}
    t0 = time.time()

    def write():
        marks["write"] = kill_then_write(host, survivors[0], volume, f"write -P 0x{0x60 + r:x} 4M 64k")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()

    def watch():
        for key, text in (("downed", CRASH_DOWN), ("singleton", SINGLETON)):
            if key not in marks and (t := first_said(survivors, text, t0)) is not None:
                marks[key] = t
        return "downed" in marks and "singleton" in marks

    until(watch, 120, f"{host.addr} downed and the placement singleton on a survivor", every=0.05)
    writer.join(130)
    if "write" not in marks:
        raise RuntimeError(f"no write through {survivors[0].addr} after kill -9 of {host.addr}")
    log(f"singleton failover round {r + 1}: killed {host.addr} (primary: {was_primary}); downed after "
        f"{marks['downed']:.2f} s, singleton moved after {marks['singleton']:.2f} s, write after {marks['write']:.2f} s")
    restart(host, three, volume)
    return marks, was_primary


def ready_for_a_kill(three, volume):
    """Three members Up and every node on the same head of VOLUME: where each failover round starts."""
    until(lambda: members_up(next(n.addr for n in three if n.alive()), 3), 120,
          f"three members Up ({dead_nodes(three) or 'all three processes alive'})")
    until(lambda: heads_agree(three, volume), 60, "heads agree before the kill")


def kill_then_write(victim, through, volume, command):
    """kill -9 of VICTIM: seconds until COMMAND (a qemu-io write) through THROUGH is acknowledged."""
    t0 = time.time()
    victim.kill9()
    until(lambda: qemu_write(through.nbd(volume), command), 120,
          f"a write through {through.addr} after kill -9 of {victim.addr}", every=0.05)
    return time.time() - t0


def restart(victim, three, volume):
    """VICTIM started again; back when it holds the same head of VOLUME as the others."""
    victim.start()
    until(lambda: heads_agree(three, volume), 120, f"{victim.addr} back on the same head")


def failover(three, by_id, volume, r, replica=False):
    """kill -9 of the sync VOLUME's primary (or, with REPLICA, of a replica): seconds until a write through a survivor
    (the primary) is acknowledged. With a replica down a majority remains: that is how long the primary waits before it
    writes without the dead replica."""
    ready_for_a_kill(three, volume)
    primary = by_id[primary_of(volume, THREE[0])]
    victim = next(n for n in three if n is not primary) if replica else primary
    through = primary if replica else next(n for n in three if n is not victim)
    base = 0x70 if replica else 0x40
    took = kill_then_write(victim, through, volume, f"write -P 0x{base + r:x} {base // 4 + r}M 64k")
    log(f"{'replica ' if replica else ''}failover round {r + 1}: killed {victim.addr}, write through {through.addr} "
        f"after {took:.2f} s; primary {by_id[primary_of(volume, through.addr)].addr}")
    restart(victim, three, volume)
    return took


def summary(times):
    return (f"median {statistics.median(times):.2f} s, max {max(times):.2f} s ({', '.join(f'{t:.2f}' for t in times)})"
            if times else "no rounds")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="randwrite-4k-qd32,seqwrite-1m-qd16,randread-4k-qd32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=5,
                    help="seconds of each shape on every target before the measured rounds, not reported (the nodes' "
                         "JIT recompiles hot code in the background for the first seconds under load)")
    ap.add_argument("--size", default="1G", help="volume size (fio's range)")
    ap.add_argument("--device-size", default="12G", help="each node's log file (sparse)")
    ap.add_argument("--failovers", type=int, default=3)
    ap.add_argument("--singleton-failovers", type=int, default=3,
                    help="rounds of kill -9 of the host that runs the placement singleton and a sync volume's primary")
    ap.add_argument("--replica-failovers", type=int, default=3,
                    help="rounds of kill -9 of a sync volume's replica, a write through its primary timed")
    ap.add_argument("--catchup", default="1G", help="data written while a replica is down (0: no catch-up phase)")
    ap.add_argument("--no-replica-path", action="store_true", help="skip fio through a non-primary node")
    ap.add_argument("--no-fio", action="store_true", help="only failover and catch-up (no one-node cluster)")
    ap.add_argument("--no-compaction", action="store_true",
                    help="cloudfs.compaction.enabled = off on every node (compaction on a primary currently cuts off "
                         "lagging replicas: see BENCHMARKS.md, Cluster)")
    ap.add_argument("--dir", default=os.path.join(REPO, "bench", "out"))
    args = ap.parse_args()
    for t in ("fio", "qemu-io"):
        nb.need(t)
    shapes = args.shapes.split(",")
    os.makedirs(args.dir, exist_ok=True)
    work = tempfile.mkdtemp(dir=args.dir, prefix="cluster-")
    log(f"work directory {work} (node logs kept there until the end)")
    nodes = []

    def on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # CLUSTER_BENCH_KEEP=1 keeps the nodes' logs after a good run too (they are always kept after a failure).
    keep_logs = bool(os.environ.get("CLUSTER_BENCH_KEEP"))
    try:
        config = None
        if args.no_compaction:
            config = os.path.join(work, "no-compaction.conf")
            with open(config, "w") as f:
                f.write("cloudfs.compaction.enabled = off\n")
        if args.no_fio:
            shapes = []
        one = Node(ONE, os.path.join(work, "one.dev"), args.device_size, None, work, config)
        if shapes:
            nodes.append(one)
        three = [Node(a, os.path.join(work, f"n{i}.dev"), args.device_size, THREE, work, config)
                 for i, a in enumerate(THREE)]
        nodes.extend(three)
        if shapes:
            one.start()
        for n in three:
            n.start()
        until(lambda: members_up(THREE[0], 3), 120, "three members Up")
        log("clusters up")
        vol1 = cli("newdisk", "1", "--size", args.size, "--mode", "async", "--contact", ONE).strip() if shapes else None
        vsync = newdisk3(args.size, "sync", three)
        vasync = newdisk3(args.size, "async", three)
        by_id = {n.host_id: n for n in three}
        psync, pasync = by_id[primary_of(vsync, THREE[0])], by_id[primary_of(vasync, THREE[0])]
        other = next(n for n in three if n is not psync)
        log(f"volumes: one-node {vol1}, sync {vsync} (primary {psync.addr}), async {vasync} (primary {pasync.addr})")
        targets = {"one-node": (one, one.nbd(vol1) if vol1 else None), "3-node sync": (psync, psync.nbd(vsync)),
                   "3-node async": (pasync, pasync.nbd(vasync))}
        if not args.no_replica_path:
            targets["3-node sync via non-primary"] = (other, other.nbd(vsync))
        if any("read" in s for s in shapes):
            for name in ("one-node", "3-node sync", "3-node async"):
                t0 = time.time()
                r = subprocess.run(["fio", "--name=fill", "--ioengine=nbd", f"--uri={targets[name][1]}",
                                    f"--size={args.size}", "--rw=write", "--bs=1M", "--iodepth=16"],
                                   capture_output=True, text=True, timeout=1200)
                log(f"prefilled {name} ({args.size}) in {time.time() - t0:.1f} s"
                    + ("" if r.returncode == 0 else f": FAILED {r.stderr.strip()[:300]}"))

        results = {}
        for shape in shapes:
            if args.warmup > 0:
                for name, (node, uri) in targets.items():
                    nb.fio(uri, shape, args.size, args.warmup)
                log(f"{shape}: every target warmed up for {args.warmup} s")
            for r in range(args.rounds):
                order = list(targets.items()) if r % 2 == 0 else list(reversed(targets.items()))
                for name, (node, uri) in order:
                    res = fio_measured(node, uri, shape, args.size, args.runtime)
                    results.setdefault((shape, name), []).append(res)
                    log(f"{shape} round {r + 1} {name}: {res['iops']:,.0f} IOPS {res['mbps']:,.1f} MB/s "
                        f"(node's mean write latency {res['node_write_ms']:.2f} ms)")
        if shapes:
            print("\n| shape | target | median IOPS | median MB/s | node's mean write latency (ms) | / one-node (per round) |")
            print("|---|---|---|---|---|---|")
        for shape in shapes:
            base = results[(shape, "one-node")]
            bm = statistics.median(x["iops"] for x in base)
            for name in targets:
                rs = results[(shape, name)]
                m = statistics.median(x["iops"] for x in rs)
                mb = statistics.median(x["mbps"] for x in rs)
                lat = statistics.median(x["node_write_ms"] for x in rs)
                per = ", ".join(f"{x['iops'] / b['iops']:.2f}" if b["iops"] else "n/a" for x, b in zip(rs, base))
                failed = sum(1 for x in rs if x.get("failed"))
                if failed:
                    per += f"; {failed} of {len(rs)} runs FAILED"
                ratio = "1" if name == "one-node" else f"**{m / bm:.2f}x** ({per})" if bm else per
                lat_s = f"{lat:.2f}" if "write" in shape else ""
                print(f"| {shape} | {name} | {m:,.0f} | {mb:,.1f} | {lat_s} | {ratio} |", flush=True)
        if one in nodes:
            one.stop()
            nodes.remove(one)

        # Failover: kill -9 the sync volume's primary; time until a write through a survivor is acknowledged.
        if args.failovers and not qemu_write(psync.nbd(vsync), "write -P 0x3f 0 1M", timeout=120):  # heads move off the base version
            raise RuntimeError(f"a first write to the sync volume through {psync.addr} failed")
        times = [failover(three, by_id, vsync, r) for r in range(args.failovers)]
        if times:
            print(f"\nfailover (kill -9 of the sync primary -> qemu-io write through a survivor acknowledged), "
                  f"{len(times)} rounds: median {statistics.median(times):.2f} s, max {max(times):.2f} s "
                  f"({', '.join(f'{t:.2f}' for t in times)})", flush=True)

        # The host of the placement singleton and of a sync volume's primary killed; then a replica killed instead.
        marks = [singleton_failover(three, by_id, r) for r in range(args.singleton_failovers)]
        if marks:
            on_primary = sum(1 for _, p in marks if p)
            print(f"\nkill -9 of the placement singleton's host ({on_primary} of {len(marks)} rounds also the sync "
                  f"volume's primary), {len(marks)} rounds:", flush=True)
            for key, what in (("downed", "downed by a survivor's crash detector"), ("singleton", "placement singleton started on a survivor"),
                              ("write", "a write through a survivor acknowledged")):
                print(f"- {what}: {summary([m[key] for m, _ in marks])}", flush=True)
        replica = [failover(three, by_id, vsync, r, replica=True) for r in range(args.replica_failovers)]
        if replica:
            print(f"\nkill -9 of a sync volume's replica -> a write through its primary acknowledged, {len(replica)} "
                  f"rounds: {summary(replica)}", flush=True)

        # Catch-up: a replica misses ARGS.CATCHUP of writes, then returns; time until its head equals the primary's.
        if args.catchup == "0":
            return
        until(lambda: members_up(THREE[0], 3), 120, "three members Up")
        until(lambda: heads_agree(three, vsync), 60, "heads agree before catch-up")
        primary = by_id[primary_of(vsync, THREE[0])]
        replica = next(n for n in three if n is not primary)
        used0 = replica.metric("cloudfs_log_used_bytes")
        replica.stop()
        t0 = time.time()
        fill = subprocess.run(["fio", "--name=miss", "--ioengine=nbd", f"--uri={primary.nbd(vsync)}", f"--size={args.catchup}",
                               "--rw=write", "--bs=1M", "--iodepth=16", "--output-format=json"],
                              capture_output=True, text=True, check=True, timeout=1200)
        wrote_s = time.time() - t0
        target = primary.head(vsync)
        # What fio really wrote: no more than the volume's size however much was asked.
        missed = json.loads(fill.stdout[fill.stdout.index("{"):])["jobs"][0]["write"]["io_bytes"]
        log(f"wrote {args.catchup} with {replica.addr} down in {wrote_s:.1f} s; primary head {target}")
        replica.start()
        launched, ready = replica.started_at, replica.ready_at
        until(lambda: replica.head(vsync) == target, 600, f"{replica.addr} catches up", every=0.05)
        done = time.time()
        used1 = replica.metric("cloudfs_log_used_bytes")
        said = [(int(m.group(1)), float(m.group(2))) for l in replica.lines if vsync in l for m in [CAUGHT_UP.search(l)] if m]
        moved = sum(b for b, _ in said) if said else missed
        src = (f"its 'caught up' log lines: {', '.join(f'{b:,} B in {t:.2f} s' for b, t in said)}" if said
               else "volume data written")
        print(f"\ncatch-up of {args.catchup} ({missed:,} bytes written while {replica.addr} was down): "
              f"{done - launched:.2f} s from launch ({ready - launched:.2f} s to the ready line, "
              f"{done - ready:.2f} s from ready to the primary's head) -> "
              f"{moved / (done - ready) / 1e6:,.1f} MB/s from ready, {moved / (done - launched) / 1e6:,.1f} MB/s "
              f"from launch (bytes: {src}); replica's cloudfs_log_used_bytes grew by {(used1 - used0) / 2**20:,.0f} MiB",
              flush=True)
    except BaseException:
        keep_logs = True
        if dead_nodes(nodes):
            log(f"nodes that died on their own: {dead_nodes(nodes)}")
        raise
    finally:
        for n in nodes:
            n.kill9() if keep_logs else n.stop()
        if keep_logs:
            log(f"node logs kept in {work} (remove it when done)")
            for f in os.listdir(work):
                if f.endswith(".dev"):
                    os.remove(os.path.join(work, f))  # the log devices are big; the node output is what helps
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
