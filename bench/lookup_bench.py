#!/usr/bin/env python3
"""Lookups and listings at scale (issue 14): two real `./cloudfs node`s, N 1-replica volumes created through the first
node's POST /volumes (16 keep-alive clients; placement spreads them over both), then, through the second node: the
first HTTP read of 4 KiB of each of --sample random volumes it does not hold (the per-volume lookup plus a forwarded
read), and `cloudfs ls` / `ls --json` of all of them. Prints Markdown lines for BENCHMARKS.md.

  python3 bench/lookup_bench.py --volumes 100000 [--sample 50] [--base 127.0.52]
"""
import argparse, http.client, json, os, random, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_bench import Node, REPO, create_volumes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--volumes", type=int, default=100000)
    ap.add_argument("--sample", type=int, default=50)
    ap.add_argument("--base", default="127.0.52")
    args = ap.parse_args()
    a, b = f"{args.base}.21", f"{args.base}.22"
    work = tempfile.mkdtemp(prefix="lookup-")
    first = Node(REPO, a, os.path.join(work, "a.log"), size="8G")
    second = Node(REPO, b, os.path.join(work, "b.log"), seeds=a, size="8G")
    try:
        made, took = create_volumes(a, args.volumes)
        # The second node's own host id: the volumes whose primary is another host are the ones it does not hold.
        conn = http.client.HTTPConnection(b, 8090, timeout=30)
        own = subprocess.run([os.path.join(REPO, "cloudfs"), "cluster", "show", "--contact", b], capture_output=True, text=True).stdout
        b_host = next(line.split("host:")[1].split()[0] for line in own.splitlines() if f"@{b}:" in line)
        elsewhere = [v["id"] for v in made if v["primary"] != b_host]
        sample = random.Random(7).sample(elsewhere, min(args.sample, len(elsewhere)))
        times = []
        for v in sample:
            t = time.perf_counter()
            conn.request("GET", f"/volumes/{v}", headers={"Range": "bytes=0-4095"})
            r = conn.getresponse()
            r.read()
            times.append((time.perf_counter() - t) * 1000)
            if r.status not in (200, 206):
                raise RuntimeError(f"read of {v} through {b}: {r.status}")
        times.sort()
        print(f"\n{len(made)} volumes created through {a} in {took:.1f} s ({len(made) / took:.0f}/s); {len(elsewhere)} not on {b}.")
        print(f"First 4 KiB read through {b} of {len(sample)} volumes it does not hold: median {statistics.median(times):.1f} ms, "
              f"p90 {times[int(len(times) * 0.9)]:.1f} ms, max {times[-1]:.1f} ms.")
        for extra in ([], ["--json"]):
            t = time.perf_counter()
            out = subprocess.run([os.path.join(REPO, "cloudfs"), "ls", *extra, "--contact", b], capture_output=True, text=True)
            el = time.perf_counter() - t
            n = len(json.loads(out.stdout)) if extra else len([line for line in out.stdout.splitlines() if line.strip()])
            print(f"`cloudfs ls {' '.join(extra)}` through {b}: {n} volumes in {el:.1f} s (exit {out.returncode}).")
    finally:
        second.stop()
        first.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
