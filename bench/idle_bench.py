#!/usr/bin/env python3
"""What an idle node costs as its volume count grows (issue 14): one real `./cloudfs node` on 127.0.33.1, volumes
created through POST /volumes (16 keep-alive clients, 1 replica, 1 MiB) in --steps steps up to --volumes; after each
step, with no I/O, over --window seconds: the node's CPU (% of one core, from /proc), its RSS, and from /metrics the
placement work per second (volumes reported to placement's rounds, follow commands taken) and the index memory.
With --restart, then kill -9 and the same node started again on its log: the time to its ready line and to the first
read of a volume served over HTTP. Prints Markdown lines for BENCHMARKS.md. --address: the node's loopback address
(127.0.33.1 unless told); --repo: the directory whose ./cloudfs runs (this checkout unless told; an A/B against another
build: a directory holding a `cloudfs` script that runs that build).

  python3 bench/idle_bench.py --volumes 10000 --steps 4 --window 20 [--restart] [--address A] [--repo DIR]
"""
import argparse, http.client, json, os, re, shutil, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_bench import Node, REPO, create_volumes  # noqa: E402

ADDR = "127.0.33.1"
CLOUDFS = REPO
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def metrics():
    conn = http.client.HTTPConnection(ADDR, 8090, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    out = {}
    for name in ["cloudfs_placement_reports_total", "cloudfs_placement_reported_volumes_total",
                 "cloudfs_placement_follow_commands_total", "cloudfs_index_memory_bytes", "cloudfs_volumes"]:
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


CREATED = []


def create(count):
    made, took = create_volumes(ADDR, count)
    if not CREATED:
        CREATED.append(made[0]["id"])
    return len(made) / took


def main():
    global ADDR, CLOUDFS
    ap = argparse.ArgumentParser()
    ap.add_argument("--volumes", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--log-size", default="8G")
    ap.add_argument("--restart", action="store_true")
    ap.add_argument("--address", default=ADDR)
    ap.add_argument("--repo", default=REPO)
    args = ap.parse_args()
    ADDR, CLOUDFS = args.address, args.repo
    work = tempfile.mkdtemp(prefix="idle-")
    node = Node(CLOUDFS, ADDR, os.path.join(work, "one.log"), size=args.log_size)
    try:
        print(f"\n| volumes | creates/s (step) | idle CPU (% of a core) | RSS MiB | volumes reported to placement /s | "
              f"follow commands /s | index memory MiB |")
        print("|---|---|---|---|---|---|---|")
        rows = [(0, None)]
        step = args.volumes // args.steps
        for s in range(args.steps + 1):
            rate = create(step) if s > 0 else None
            # Let the creates' own work settle (their placement rounds, checkpoints) before measuring idle.
            time.sleep(5)
            m0, c0, t0 = metrics(), cpu_seconds(node.proc.pid), time.time()
            time.sleep(args.window)
            # The CPU first: a scrape of /metrics (every volume's health series) is work of its own, not idle cost.
            c1, t1 = cpu_seconds(node.proc.pid), time.time()
            m1 = metrics()
            dt = t1 - t0
            per = lambda k: (m1[k] - m0[k]) / dt  # noqa: E731
            print(f"| {m1['cloudfs_volumes']:.0f} | {'' if rate is None else f'{rate:.0f}'} | {(c1 - c0) / dt * 100:.1f} | "
                  f"{rss_mib(node.proc.pid):.0f} | {per('cloudfs_placement_reported_volumes_total'):.0f} | "
                  f"{per('cloudfs_placement_follow_commands_total'):.0f} | {m1['cloudfs_index_memory_bytes'] / 2**20:.1f} |",
                  flush=True)
        if args.restart:
            restart(node, os.path.join(work, "one.log"), args.log_size)
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)


def restart(node, device, size):
    """kill -9, start again on the same log: seconds to the ready line and to the first read of a volume served."""
    node.proc.kill()
    node.proc.wait()
    t = time.perf_counter()
    again = Node(CLOUDFS, ADDR, device, size=size)
    ready = time.perf_counter() - t
    node.proc, node.out = again.proc, again.out
    while True:
        try:
            conn = http.client.HTTPConnection(ADDR, 8090, timeout=10)
            conn.request("GET", f"/volumes/{CREATED[0]}", headers={"Range": "bytes=0-4095"})
            r = conn.getresponse()
            r.read()
            if r.status in (200, 206):
                break
        except OSError:
            pass
        if time.perf_counter() - t > 300:
            raise RuntimeError("no read served within 300 s of the restart")
        time.sleep(0.05)
    print(f"\nkill -9, then the node again on its log: ready after {ready:.1f} s, first volume read served after "
          f"{time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
