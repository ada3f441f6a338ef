#!/usr/bin/env python3
"""fio over NBD: CloudFS vs the references of shared/BENCHMARKING.md, alternating, same run.

Starts nbdkit's file plugin, qemu-nbd on qcow2 (optional) and a CloudFS node on the same disk, runs each fio shape
against each server in turn for several rounds, and prints median IOPS/MB/s, p99 latency and the ratio
CloudFS / reference as Markdown lines for BENCHMARKS.md. Everything stays on one loopback address (--host, 127.0.0.1 unless told) and stops by itself.
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHAPES = {
    "randwrite-4k-qd32": ["--rw=randwrite", "--bs=4k", "--iodepth=32"],
    "randread-4k-qd32": ["--rw=randread", "--bs=4k", "--iodepth=32"],
    "seqwrite-1m-qd16": ["--rw=write", "--bs=1M", "--iodepth=16"],
    "seqread-1m-qd16": ["--rw=read", "--bs=1M", "--iodepth=16"],
    "syncwrite-4k-qd1": ["--rw=write", "--bs=4k", "--iodepth=1", "--fsync=1"],
    "mixed-70-30-qd64": ["--rw=randrw", "--rwmixread=70", "--bs=4k", "--iodepth=64"],
}


def need(tool):
    if shutil.which(tool) is None:
        sys.exit(f"nbd_bench: {tool} is not installed (apt-get install {'qemu-utils' if tool.startswith('qemu') else tool})")


def wait_port(host, port, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def target(uri):
    """fio's options for a server: an NBD URI, or file:PATH, a raw file written with O_DIRECT through libaio (the
    disk's own speed, the reference issue 13 names beside nbdkit)."""
    if uri.startswith("file:"):
        return ["--ioengine=libaio", "--direct=1", f"--filename={uri[5:]}"]
    return ["--ioengine=nbd", f"--uri={uri}"]


def fio(uri, shape, size, runtime):
    cmd = ["fio", "--name=bench", *target(uri), f"--size={size}", "--time_based",
           f"--runtime={runtime}", "--output-format=json", "--group_reporting"] + SHAPES[shape]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=runtime + 120)
    if out.returncode != 0:
        raise RuntimeError(f"fio failed on {uri} ({shape}): {out.stderr.strip()[:400]}")
    job = json.loads(out.stdout[out.stdout.index("{"):])["jobs"][0]
    iops = job["read"]["iops"] + job["write"]["iops"]
    bw = (job["read"]["bw_bytes"] + job["write"]["bw_bytes"]) / 1e6
    lat = job["write"] if job["write"]["iops"] > 0 else job["read"]
    p99 = lat.get("clat_ns", {}).get("percentile", {}).get("99.000000", 0) / 1000.0
    return {"iops": iops, "mbps": bw, "p99_us": p99}


def prefill(uri, size):
    subprocess.run(["fio", "--name=fill", *target(uri), f"--size={size}", "--rw=write",
                    "--bs=1M", "--iodepth=16", "--output-format=json"], capture_output=True, check=True, timeout=600)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User + system CPU time of a process and its threads so far (/proc/PID/stat), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def thread_switches(pid):
    """Times the process's threads gave up the CPU to wait (voluntary context switches, /proc/PID/task/*/status) so
    far: each is a thread hand-off or a blocking call, what a request's latency is made of at low queue depth."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            pass  # a thread that ended meanwhile
    return total


def compaction_metrics(host, http_port):
    """The node's compaction counters (passes, segments, bytes copied) from its /metrics, as one line."""
    try:
        with urllib.request.urlopen(f"http://{host}:{http_port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError as e:
        return f"unavailable ({e})"
    wanted = ("cloudfs_compaction_passes_total", "cloudfs_compaction_segments_total", "cloudfs_compaction_copied_bytes_total")
    return ", ".join(f"{line.split()[0]} {float(line.split()[1]):,.0f}" for line in text.splitlines() if line.startswith(wanted))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--size", default="1G", help="volume / file size")
    ap.add_argument("--dir", default=os.path.join(REPO, "bench", "out"), help="work directory (on the disk under test)")
    ap.add_argument("--qemu-nbd", action="store_true", help="also measure qemu-nbd on qcow2")
    ap.add_argument("--raw-direct", action="store_true", help="also measure fio itself on a raw file with O_DIRECT (libaio), no server")
    ap.add_argument("--nocache", action="store_true", help="also measure nbdkit's file plugin with cache=none")
    ap.add_argument("--host", default="127.0.0.1", help="loopback address every server listens on (so two runs on one machine do not meet)")
    ap.add_argument("--perf", metavar="DIR", help="record an on-CPU profile (perf record -g; .NET perf map on, W^X off so perf can resolve jitted code) of this checkout's node during the first round of each shape into DIR/SHAPE.data")
    ap.add_argument("--against", metavar="CHECKOUT", help="also measure the CloudFS build of another checkout (A/B: its ./cloudfs, e.g. a git worktree of the previous main)")
    args = ap.parse_args()
    for t in ("fio", "nbdkit"):
        need(t)
    shapes = args.shapes.split(",")
    host = args.host
    os.makedirs(args.dir, exist_ok=True)
    work = tempfile.mkdtemp(dir=args.dir)
    procs = []
    try:
        size_bytes = int(subprocess.run(["numfmt", "--from=iec", args.size], capture_output=True, text=True).stdout)
        raw = os.path.join(work, "nbdkit.img")
        with open(raw, "wb") as f:
            f.truncate(size_bytes)
        procs.append(subprocess.Popen(["nbdkit", "-f", "-p", "10900", "-i", host, "file", raw],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        servers = {"nbdkit": f"nbd://{host}:10900/"}
        if args.nocache:
            # The same plugin told to keep the file out of the page cache: closer to CloudFS's O_DIRECT log, so the
            # ratio against it separates "served from RAM" from "slower software".
            raw2 = os.path.join(work, "nbdkit-nocache.img")
            with open(raw2, "wb") as f:
                f.truncate(size_bytes)
            procs.append(subprocess.Popen(["nbdkit", "-f", "-p", "10902", "-i", host, "file", raw2, "cache=none"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            servers["nbdkit-cache=none"] = f"nbd://{host}:10902/"
        if args.raw_direct:
            raw3 = os.path.join(work, "raw-direct.img")
            with open(raw3, "wb") as f:
                f.truncate(size_bytes)
            servers["fio-O_DIRECT"] = f"file:{raw3}"
        if args.qemu_nbd:
            need("qemu-nbd")
            q = os.path.join(work, "ref.qcow2")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", q, args.size], check=True)
            # -t: keep serving after a client leaves (the readiness probe is one); -e: fio and the probe at once.
            procs.append(subprocess.Popen(["qemu-nbd", "-t", "-e", "8", "-f", "qcow2", "-p", "10901", "-b", host, q],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            servers["qemu-nbd"] = f"nbd://{host}:10901/"
        def start_cloudfs(repo, name, akka, http, nbd):
            node = subprocess.Popen([os.path.join(repo, "cloudfs"), "node", "--device", os.path.join(work, f"{name}.log"),
                                     "--size", "8G", "--listen", host, "--akka-port", str(akka), "--http-port", str(http), "--nbd-port", str(nbd)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=dict(os.environ, DOTNET_PerfMapEnabled="1", DOTNET_EnableWriteXorExecute="0") if args.perf else None)
            procs.append(node)
            end = time.time() + 300
            for line in node.stdout:
                if "ready" in line:
                    break
                if time.time() > end:
                    raise RuntimeError(f"{name} node did not get ready")
            # --contact names the node's HTTP server since the CLI talks HTTP; a build from before takes its akka port.
            for contact in (f"{host}:{http}", f"{host}:{akka}"):
                made = subprocess.run([os.path.join(repo, "cloudfs"), "newdisk", "1", "--size", args.size, "--mode", "async",
                                       "--contact", contact], capture_output=True, text=True)
                if made.returncode == 0:
                    break
            else:
                raise RuntimeError(f"{name}: newdisk failed: {made.stderr.strip()}")
            vol = made.stdout.strip()
            servers[name] = f"nbd://{host}:{nbd}/{vol}"
            nodes[name] = node
            return node

        nodes = {}
        node = start_cloudfs(REPO, "cloudfs", 4153, 8190, 10909)
        if args.against:
            start_cloudfs(os.path.abspath(args.against), "cloudfs-against", 4154, 8191, 10910)
        for name, uri in servers.items():
            if not uri.startswith("file:"):
                wait_port(host, int(uri.split(":")[2].split("/")[0]))
            if any("read" in s for s in shapes):
                prefill(uri, args.size)
        results = {}
        for shape in shapes:
            for r in range(args.rounds):
                for name, uri in (servers.items() if r % 2 == 0 else reversed(list(servers.items()))):
                    rec = None
                    if args.perf and r == 0 and name == "cloudfs":
                        need("perf")
                        os.makedirs(args.perf, exist_ok=True)
                        # Skips the first second (fio connecting, ramping up) and stops before fio does.
                        rec = subprocess.Popen(["bash", "-c", f"sleep 1; exec perf record -g -F 999 -p {node.pid} -o {os.path.join(args.perf, shape + '.data')} -- sleep {max(1, args.runtime - 2)}"],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    cpu0 = cpu_seconds(nodes[name].pid) if name in nodes else 0.0
                    switches0 = thread_switches(nodes[name].pid) if name in nodes else 0
                    res = fio(uri, shape, args.size, args.runtime)
                    # A CloudFS node's CPU per request: what the machine's load cannot hide (IOPS move with the share
                    # of the cores the node gets; the work per request does not). Likewise its threads' waits.
                    if name in nodes and res["iops"] > 0:
                        res["cpu_us"] = (cpu_seconds(nodes[name].pid) - cpu0) * 1e6 / (res["iops"] * args.runtime)
                        res["switches"] = (thread_switches(nodes[name].pid) - switches0) / (res["iops"] * args.runtime)
                    results.setdefault((shape, name), []).append(res)
                    if rec is not None:
                        rec.wait()
        peaks = {name: rss_kib(n.pid) for name, n in nodes.items()}
        # What compaction did meanwhile on each CloudFS node (its policy shows here, not only in the IOPS).
        compaction = {name: compaction_metrics(host, port) for name, port in (("cloudfs", 8190), ("cloudfs-against", 8191)) if name in servers}
        print(f"\n| shape | server | median IOPS | median MB/s | median p99 (us) | CloudFS / server |")
        print("|---|---|---|---|---|---|")
        for shape in shapes:
            c = results[(shape, "cloudfs")]
            cm = statistics.median(x["iops"] for x in c)
            for name in servers:
                rs = results[(shape, name)]
                m = statistics.median(x["iops"] for x in rs)
                mb = statistics.median(x["mbps"] for x in rs)
                p99 = statistics.median(x["p99_us"] for x in rs)
                ratio = "" if name == "cloudfs" else f"{cm / m:.2f}x" if m else "n/a"
                print(f"| {shape} | {name} | {m:,.0f} | {mb:,.1f} | {p99:,.0f} | {ratio} |")
        print("\n| shape | CloudFS node | IOPS per round | node CPU per request (us), per round | median | node thread waits per request, median |")
        print("|---|---|---|---|---|---|")
        for shape in shapes:
            for name in nodes:
                rs = results[(shape, name)]
                cpu = [x["cpu_us"] for x in rs if "cpu_us" in x]
                waits = [x["switches"] for x in rs if "switches" in x]
                iops = ", ".join(f"{x['iops']:,.0f}" for x in rs)
                per_round = ", ".join(f"{c:,.0f}" for c in cpu)
                print(f"| {shape} | {name} | {iops} | {per_round} | {statistics.median(cpu) if cpu else 0:,.0f} | {statistics.median(waits) if waits else 0:.2f} |")
        print()
        for name, peak in peaks.items():
            print(f"{name} node peak RSS (VmHWM): {peak / 1024:.0f} MiB")
        for name, m in compaction.items():
            print(f"{name} compaction: {m}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
