#!/usr/bin/env python3
"""How long three nodes started together take to form a cluster, and to stop together.

Each round starts three `cloudfs node` processes at the same moment on NET.11-13 (--net, default 127.0.53), each with
`--seeds` naming all three (the compose file's way), on fresh logs, and times each until it prints its ready line
(which it does once it is an Up member); then SIGTERM to all three at once, timed until every process has exited.
Builds alternate round by round; per build it prints the median over the rounds of the slowest node's ready time and
of the stop.

  bench/cluster_form.py --build before=/tmp/cf-main --build after=CloudFs.Host/bin/Release/net10.0 --rounds 5

A build is a directory holding cloudfs.dll (a copy of CloudFs.Host/bin/Release/net10.0)."""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402  (build_runner)


def wait_all(procs, outs, what, start, timeout=120):
    """Seconds from START (a time.monotonic()) until each process's stdout holds WHAT."""
    done = {}
    while len(done) < len(procs):
        if time.monotonic() - start > timeout:
            sys.exit(f"cluster_form: not every node printed {what!r} within {timeout} s")
        for i, p in enumerate(procs):
            if i in done:
                continue
            with open(outs[i]) as f:
                if what in f.read():
                    done[i] = time.monotonic() - start
            if i not in done and p.poll() is not None:
                sys.exit(f"cluster_form: node {i} exited ({p.returncode}) before it was ready; see {outs[i]}")
        time.sleep(0.05)
    return [done[i] for i in range(len(procs))]


def round_of(runner, net, work):
    addrs = [f"{net}.{11 + i}" for i in range(3)]
    seeds = ",".join(addrs)
    procs, outs = [], []
    t0 = time.monotonic()
    for i, a in enumerate(addrs):
        out = os.path.join(work, f"n{i}.out")
        outs.append(out)
        with open(out, "w") as o, open(os.path.join(work, f"n{i}.err"), "w") as e:
            procs.append(subprocess.Popen([runner, "node", "--listen", a, "--device", os.path.join(work, f"n{i}.log"),
                                           "--size", "256M", "--seeds", seeds], stdout=o, stderr=e))
    try:
        ready = wait_all(procs, outs, " ready (", t0)
        start = time.monotonic()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=120)
        return max(ready), time.monotonic() - start
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR (a directory holding cloudfs.dll)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--net", default="127.0.53")
    args = ap.parse_args()
    builds = []
    for b in args.build:
        name, _, directory = b.partition("=")
        builds.append((name, cb.build_runner(directory, "cluster_form")))
    results = {name: [] for name, _ in builds}
    for r in range(args.rounds):
        for name, runner in (builds if r % 2 == 0 else builds[::-1]):
            work = tempfile.mkdtemp(prefix="cluster-form-")
            try:
                formed, stopped = round_of(runner, args.net, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            results[name].append((formed, stopped))
            print(f"round {r + 1} {name}: all three ready after {formed:.2f} s, stopped together in {stopped:.2f} s", flush=True)
    for name, rows in results.items():
        print(f"{name}: ready median {statistics.median(f for f, _ in rows):.2f} s (max {max(f for f, _ in rows):.2f}), "
              f"stop median {statistics.median(s for _, s in rows):.2f} s (max {max(s for _, s in rows):.2f})")


if __name__ == "__main__":
    main()
