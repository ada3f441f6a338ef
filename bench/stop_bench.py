#!/usr/bin/env python3
"""How long stopping a cluster takes, and what it prints (issue 15: a 3-node stop <= 3 s, no WARN or ERROR line).

Each round starts a fresh cluster of real `cloudfs node` processes on NET.1-3 (--net, default 127.0.25; seed NET.1,
default ports),
waits until every node sees three members Up, creates a sync `newdisk 3` volume and writes 4 MiB to it through its
primary (so the nodes hold shards, feeds and the placement singleton), then sends SIGTERM to all three at once and
times each process until it has exited. It does the same with one node on NET.4. Per build it prints the median
and the slowest exit over the rounds, and the WARN/ERROR and dead-letter lines the nodes printed from their start up
to the SIGTERM and after it (with the first of them, to say what they were; dead letters are framework INFO lines, so
they show only in a CONFIG with cloudfs.log-level = debug). The builds alternate round by round (ABBA...).

  bench/stop_bench.py --build before=/tmp/cf-main --build after=CloudFs.Host/bin/Release/net10.0 --rounds 5

A build is a directory holding cloudfs.dll (a copy of CloudFs.Host/bin/Release/net10.0). Node output goes to
bench/out/stop-*/, kept with STOP_BENCH_KEEP=1 or when a round fails."""
import argparse, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402  (nodes, cluster show, newdisk)

THREE = ["127.0.25.1", "127.0.25.2", "127.0.25.3"]
ONE = "127.0.25.4"
NOISE = re.compile(r" (WARN |ERROR) \[|dead letters encountered")


def stop_together(nodes):
    """SIGTERM to every node at once; seconds from the signal until each process has exited."""
    start = time.monotonic()
    for n in nodes:
        n.proc.send_signal(signal.SIGTERM)
    exits = {}
    deadline = start + 120
    while len(exits) < len(nodes):
        for n in nodes:
            if n.addr not in exits and n.proc.poll() is not None:
                exits[n.addr] = time.monotonic() - start
        if time.monotonic() > deadline:
            for n in nodes:
                if n.addr not in exits:
                    n.kill9()
                    exits[n.addr] = float("inf")
            break
        time.sleep(0.01)
    return [exits[n.addr] for n in nodes]


def noise_of(node, before):
    """The WARN/ERROR and dead-letter lines node printed before its line `before` (the start) and from it on (the stop)."""
    # The output pump (cluster_bench.Node) drains the pipe after the process exits: wait until it stops growing.
    seen, deadline = -1, time.time() + 5
    while len(node.lines) != seen and time.time() < deadline:
        seen = len(node.lines)
        time.sleep(0.3)
    lines = [line.rstrip() for line in node.lines]
    return [l for l in lines[:before] if NOISE.search(l)], [l for l in lines[before:] if NOISE.search(l)]


def round_of(runner, config, work, three):
    cb.CLOUDFS = runner
    cb.THREE = THREE
    if three:
        nodes = [cb.Node(a, os.path.join(work, f"n{i}.dev"), "1G", THREE, work, config) for i, a in enumerate(THREE)]
        for n in nodes:
            n.start()
        cb.until(lambda: all(cb.members_up(a, 3) for a in THREE), 120, "three members Up on every node")
        volume = cb.newdisk3("64M", "sync", nodes)
        primary = {n.host_id: n for n in nodes}[cb.primary_of(volume, THREE[0])]
        if not cb.qemu_write(primary.nbd(volume), "write -P 7 0 4M", timeout=60):
            raise RuntimeError("the write through the primary failed")
    else:
        nodes = [cb.Node(ONE, os.path.join(work, "one.dev"), "1G", [], work, config)]
        nodes[0].start()
        volume = cb.cli("newdisk", "1", "--size", "64M", "--contact", ONE).strip()
        if not cb.qemu_write(nodes[0].nbd(volume), "write -P 7 0 4M", timeout=60):
            raise RuntimeError("the write failed")
    marks = [len(n.lines) for n in nodes]
    try:
        exits = stop_together(nodes)
    finally:
        for n in nodes:
            n.kill9()
    noise = [noise_of(n, m) for n, m in zip(nodes, marks)]
    codes = [n.proc.returncode for n in nodes]
    return exits, [l for start, _ in noise for l in start], [l for _, stop in noise for l in stop], codes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR[:CONFIG]")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--net", default="127.0.25", help="the nodes' loopback addresses are NET.1-4")
    args = ap.parse_args()
    global THREE, ONE
    THREE, ONE = [f"{args.net}.{i}" for i in (1, 2, 3)], f"{args.net}.4"
    builds = []
    for b in args.build:
        name, _, rest = b.partition("=")
        directory, _, config = rest.partition(":")
        builds.append((name, cb.build_runner(directory, "stop_bench"), config or None))
    out_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    os.makedirs(out_root, exist_ok=True)
    results = {(name, three): [] for name, _, _ in builds for three in (True, False)}
    noise = {(name, three): [] for name, _, _ in builds for three in (True, False)}
    start_noise = {(name, three): [] for name, _, _ in builds for three in (True, False)}
    failed = False
    for r in range(args.rounds):
        for name, runner, config in (builds if r % 2 == 0 else list(reversed(builds))):
            for three in (True, False):
                work = tempfile.mkdtemp(prefix=f"stop-{name}-", dir=out_root)
                what = "3 nodes" if three else "1 node"
                try:
                    exits, at_start, lines, codes = round_of(runner, config, work, three)
                    results[(name, three)].append(max(exits))
                    noise[(name, three)].append(lines)
                    start_noise[(name, three)].append(at_start)
                    print(f"round {r + 1} {name} {what}: exits after {', '.join(f'{e:.2f}' for e in exits)} s "
                          f"(codes {codes}), {len(at_start)} WARN/ERROR/dead-letter line(s) before SIGTERM, "
                          f"{len(lines)} after (load {os.getloadavg()[0]:.1f})", flush=True)
                    for line in (at_start[:3] + lines[:3]):
                        print(f"    {line[:220]}", flush=True)
                except RuntimeError as e:
                    failed = True
                    print(f"round {r + 1} {name} {what}: FAILED, left out ({str(e).splitlines()[0][:200]})", flush=True)
                finally:
                    for f in os.listdir(work):
                        if f.endswith(".dev") or f.endswith(".keys"):
                            os.remove(os.path.join(work, f))
                    if not failed and os.environ.get("STOP_BENCH_KEEP") != "1":
                        shutil.rmtree(work, ignore_errors=True)
    for name, _, _ in builds:
        for three in (True, False):
            times = results[(name, three)]
            if not times:
                print(f"{name} {'3 nodes' if three else '1 node'}: no round completed")
                continue
            counts = [len(x) for x in noise[(name, three)]]
            starts = [len(x) for x in start_noise[(name, three)]]
            print(f"{name} {'3 nodes' if three else '1 node'}: last exit after SIGTERM median {statistics.median(times):.2f} s, "
                  f"max {max(times):.2f} s ({len(times)} rounds); WARN/ERROR/dead-letter lines per round before SIGTERM: "
                  f"{starts}, after: {counts}")


if __name__ == "__main__":
    main()
