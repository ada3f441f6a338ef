#!/usr/bin/env python3
"""The checkpoint bound after a crash under writes (issue 14): a one-node cluster on 127.0.0.57, a 1-replica volume,
fio seqwrite 1 MiB QD16 through NBD for --write s, then kill -9 of the node while fio still writes, and a restart on the
same log. Prints what the restart replayed (its "roll-forward: N entries (B bytes) replayed" line; a build from before
the bound prints entries only) against cloudfs.checkpoint-bytes (256 MiB by default), and the time from the restart
to the ready line. Builds alternate round by round (ABBA).

  python3 bench/replay_bound.py --build main=/tmp/cf-main --build head=/tmp/cf-head --rounds 3 [--write 20]

A build is a directory holding cloudfs.dll (a copy of CloudFs.Host/bin/Release/net10.0)."""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402  (nodes, the CLI)

ADDR = "127.0.0.57"
REPLAYED = re.compile(r"roll-forward: (\d+) entries(?: \((\d+) bytes\))? replayed")


def round_of(runner, seconds):
    cb.CLOUDFS = runner
    work = tempfile.mkdtemp(prefix="cloudfs-replay-")
    node = cb.Node(ADDR, os.path.join(work, "n.dev"), "8G", None, work)
    try:
        node.start()
        volume = cb.cli("newdisk", "1", "--size", "4G", "--contact", ADDR).strip()
        fio = subprocess.Popen(["fio", "--name=w", "--ioengine=nbd", f"--uri={node.nbd(volume)}", "--size=4G", "--rw=write",
                                "--bs=1M", "--iodepth=16", "--time_based", f"--runtime={seconds + 30}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(seconds)  # the load runs this long before the crash (a benchmark's duration, not a wait for a state)
        node.kill9()
        fio.kill()
        fio.wait()
        started = time.time()
        node.start()
        ready = time.time() - started
        deadline = time.time() + 10  # the node's logger may print the line after the ready line
        while time.time() < deadline:
            for line in list(node.lines):
                m = REPLAYED.search(line)
                if m:
                    return int(m.group(1)), (int(m.group(2)) if m.group(2) else None), ready
            time.sleep(0.1)
        raise RuntimeError("the restart printed no roll-forward line:\n" + "".join(node.lines[-20:]))
    finally:
        node.kill9()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", type=int, default=20, help="seconds of writes before the kill -9")
    args = ap.parse_args()
    builds = []
    for b in args.build:
        name, _, directory = b.partition("=")
        builds.append((name, cb.build_runner(directory, "replay_bound")))
    results = {name: [] for name, _ in builds}
    for r in range(args.rounds):
        for name, runner in (builds if r % 2 == 0 else list(reversed(builds))):
            entries, replayed, ready = round_of(runner, args.write)
            results[name].append((entries, replayed, ready))
            size = f"{replayed / 2**20:,.0f} MiB" if replayed is not None else "bytes not reported"
            print(f"round {r + 1} {name}: {entries:,} entries replayed ({size}), ready {ready:.1f} s after the restart "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    for name, rows in results.items():
        sizes = [b for _, b, _ in rows if b is not None]
        print(f"{name}: entries replayed {', '.join(f'{e:,}' for e, _, _ in rows)}"
              + (f"; most replayed {max(sizes) / 2**20:,.0f} MiB" if sizes else "")
              + f"; restart to ready median {statistics.median(t for _, _, t in rows):.1f} s")


if __name__ == "__main__":
    main()
