#!/usr/bin/env python3
"""Membership under a saturated CPU (issue 14): N real `./cloudfs node` processes on 127.0.14.1..N, sync volumes of 3
replicas, then
  1. failover: kill -9 of a volume's primary -> a qemu-io write through a survivor acknowledged (seconds), R rounds;
  2. stall: busy loops on every core for H seconds while each volume is written every few seconds through a node
     that is not stopped; counted: processes that exited, rejoins (new incarnations), writes that failed, the longest
     time a volume went without an acknowledged write, and whether every member is Up and every volume writable
     after the hogs stop.
Run for the settings of this branch ("new") and/or the settings before it ("old": 2 s heartbeat pause, 2 s
stable-after, Akka's down-all-when-unstable, no rejoin), side by side. Prints Markdown lines for BENCHMARKS.md.
"""
import argparse, os, random, signal, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402  (Node, cli, until, qemu_write ... shared with the cluster benchmark)

OLD_SETTINGS = """
akka.cluster.failure-detector.acceptable-heartbeat-pause = 2s
akka.cluster.split-brain-resolver.stable-after = 2s
akka.cluster.split-brain-resolver.down-all-when-unstable = on
akka.cluster.down-removal-margin = off
akka.cluster.retry-unsuccessful-join-after = 10s
cloudfs.membership.rejoin = off
"""


def log(msg):
    cb.log(msg)


def retry(fn, timeout, what):
    """fn() until it returns without an error (a CLI call that timed out on a loaded machine is asked again)."""
    end = time.time() + timeout
    while True:
        try:
            return fn()
        except RuntimeError as e:
            if time.time() > end:
                raise RuntimeError(f"{what}: {e}")
            time.sleep(1)


def hogs(n):
    """N busy loops (one per core): plain Python, nothing to install."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run(variant, args, work):
    addrs = [f"{args.base}.{i + 1}" for i in range(args.nodes)]
    config = os.path.join(work, f"{variant}.conf")
    with open(config, "w") as f:
        f.write(OLD_SETTINGS if variant == "old" else "")
    nodes = [cb.Node(a, os.path.join(work, f"{variant}-{i}.dev"), args.device_size, addrs, work, config) for i, a in enumerate(addrs)]
    result = {"variant": variant}
    try:
        for n in nodes:
            n.start()
        try:
            cb.until(lambda: cb.members_up(addrs[0], len(nodes)), 300, f"{len(nodes)} members Up")
        except RuntimeError:
            raise RuntimeError(f"{len(nodes)} members never Up together within 300 s of the start ({cb.dead_nodes(nodes) or 'no process exited'})")
        by_id = {n.host_id: n for n in nodes}
        volumes = []
        for v in range(args.volumes):
            for attempt in range(10):
                try:
                    volumes.append(cb.cli("newdisk", "3", "--size", "64M", "--mode", "sync", "--contact", addrs[0]).strip())
                    break
                except RuntimeError as e:
                    if attempt == 9:
                        raise
                    log(f"{e}; again")
                    time.sleep(2)
        for v in volumes:
            cb.until(lambda: cb.qemu_write(nodes[0].nbd(v), "write -P 0x11 0 64k"), 120, f"a first write to {v}")

        # 1. Failover after kill -9 of a primary.
        times = []
        for r in range(args.failovers):
            v = volumes[r % len(volumes)]
            cb.until(lambda: cb.members_up(addrs[0] if nodes[0].alive() else addrs[1], len(nodes)), 180, f"{len(nodes)} members Up")
            cb.until(lambda: cb.heads_agree([n for n in nodes if n.head(v) is not None], v), 120, "heads agree")
            victim = by_id[retry(lambda: cb.primary_of(v, next(n.addr for n in nodes if n.alive())), 180, "the primary")]
            survivor = next(n for n in nodes if n is not victim)
            t0 = time.time()
            victim.kill9()
            cb.until(lambda: cb.qemu_write(survivor.nbd(v), f"write -P 0x{0x40 + r:x} 1M 64k"), 120,
                     f"a write through {survivor.addr} after kill -9 of {victim.addr}", every=0.05)
            took = time.time() - t0
            times.append(took)
            log(f"[{variant}] failover round {r + 1}: kill -9 of {victim.addr} -> write through {survivor.addr} after {took:.2f} s")
            victim.start()
        result["failover"] = times

        # 2. Every core busy for H seconds; writes go on.
        cb.until(lambda: cb.members_up(addrs[0], len(nodes)), 180, f"{len(nodes)} members Up before the hogs")
        generations = {n.addr: n.generation for n in nodes}
        rejoins_before = {n.addr: rejoins(n) for n in nodes}
        stop = threading.Event()
        stats = {v: {"ok": 0, "failed": 0, "last_ok": time.time(), "longest": 0.0} for v in volumes}

        def writer(v):
            i = 0
            while not stop.is_set():
                live = [n for n in nodes if n.alive()]
                if not live:
                    time.sleep(1)
                    continue
                n = random.choice(live)
                ok = cb.qemu_write(n.nbd(v), f"write -P 0x{(i % 200) + 20:x} {2 + i % 32}M 64k", timeout=20)
                now = time.time()
                s = stats[v]
                if ok:
                    s["ok"] += 1
                    s["longest"] = max(s["longest"], now - s["last_ok"])
                    s["last_ok"] = now
                else:
                    s["failed"] += 1
                i += 1
                stop.wait(args.write_every)

        writers = [threading.Thread(target=writer, args=(v,), daemon=True) for v in volumes]
        for w in writers:
            w.start()
        busy = hogs(args.cores)
        t0 = time.time()
        exited = set()
        while time.time() - t0 < args.hog_seconds:
            for n in nodes:
                if not n.alive():
                    exited.add(n.addr)
            time.sleep(1)
        for h in busy:
            h.kill()
        log(f"[{variant}] hogs stopped after {args.hog_seconds} s; exited so far: {sorted(exited) or 'none'}")
        # Recovery: every member Up again (or not), every volume writable.
        recovered = None
        t1 = time.time()
        try:
            cb.until(lambda: any(n.alive() for n in nodes) and cb.members_up(next(n for n in nodes if n.alive()).addr, len(nodes)), args.recovery,
                     "every member Up after the hogs")
            recovered = time.time() - t1
        except RuntimeError as e:
            log(f"[{variant}] {e}")
        stop.set()
        for w in writers:
            w.join(timeout=30)
        for n in nodes:
            if not n.alive():
                exited.add(n.addr)
        writable = 0
        for v in volumes:
            live = [n for n in nodes if n.alive()]
            if live and any(cb.qemu_write(n.nbd(v), "write -P 0x99 40M 64k", timeout=30) for n in live[:3]):
                writable += 1
        result.update(
            exited=sorted(exited),
            rejoins=sum(rejoins(n) - rejoins_before[n.addr] for n in nodes),
            restarts=sum(n.generation - generations[n.addr] for n in nodes),
            ok=sum(s["ok"] for s in stats.values()), failed=sum(s["failed"] for s in stats.values()),
            longest=max(max(s["longest"], time.time() - s["last_ok"] if s["ok"] == 0 else 0) for s in stats.values()),
            recovered=recovered, writable=writable, volumes=len(volumes))
        return result
    finally:
        for n in nodes:
            n.kill9()


def rejoins(node):
    return sum(1 for line in list(node.lines) if "rejoined the cluster as" in line)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--base", default="127.0.14", help="addresses BASE.1 .. BASE.N")
    ap.add_argument("--volumes", type=int, default=3)
    ap.add_argument("--failovers", type=int, default=3)
    ap.add_argument("--hog-seconds", type=int, default=180)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="busy loops (one per core)")
    ap.add_argument("--write-every", type=float, default=2.0, help="seconds between writes to each volume")
    ap.add_argument("--recovery", type=int, default=180, help="seconds allowed for every member to be Up after the hogs")
    ap.add_argument("--variants", default="old,new")
    ap.add_argument("--device-size", default="2G")
    ap.add_argument("--dir", default=os.path.join(cb.REPO, "bench", "out"))
    args = ap.parse_args()
    cb.nb.need("qemu-io")
    os.makedirs(args.dir, exist_ok=True)
    work = tempfile.mkdtemp(dir=args.dir, prefix="stall-")
    log(f"work directory {work}")

    def on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    results = []
    for variant in args.variants.split(","):
        try:
            results.append(run(variant, args, work))
        except RuntimeError as e:
            log(f"[{variant}] failed: {e}")
            results.append({"variant": variant, "error": str(e)})
    print(f"\n{args.nodes} nodes, {args.volumes} sync volumes of 3 replicas, {args.cores} busy loops for {args.hog_seconds} s, "
          f"a write to each volume every {args.write_every} s through a random live node:\n")
    print("| settings | kill -9 of a primary -> write through a survivor | exited | rejoins | writes ok / failed | longest without a write | all Up after the hogs | writable after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['variant']} | failed: {r['error'][:120]} | | | | | | |")
            continue
        f = r["failover"]
        fo = f"median {statistics.median(f):.1f} s ({', '.join(f'{t:.1f}' for t in f)})" if f else "-"
        rec = f"{r['recovered']:.0f} s" if r["recovered"] is not None else f"no (within {args.recovery} s)"
        print(f"| {r['variant']} | {fo} | {len(r['exited'])} {r['exited'] or ''} | {r['rejoins']} | {r['ok']} / {r['failed']} | "
              f"{r['longest']:.0f} s | {rec} | {r['writable']}/{r['volumes']} |", flush=True)


if __name__ == "__main__":
    main()
