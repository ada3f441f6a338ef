#!/usr/bin/env python3
"""A/B of cloudfs builds on a 3-node cluster: fio through a sync (or async) volume's primary, the builds alternating
round by round (ABBA...), each round on a fresh cluster on 127.0.0.51-53. Prints IOPS and mean latency per round and
the medians. For changes whose effect is smaller than the run-to-run noise of the full cluster benchmark.

  bench/cluster_ab.py --build before=/tmp/cf-a --build after=/tmp/cf-b[:/path/extra.conf] --rounds 3 [--qd 32]

A build is a directory holding cloudfs.dll (copy CloudFs.Host/bin/Release/net10.0 there); the optional config file is
passed to every node with --config. Environment variables for the nodes go in front of the command as usual."""
import argparse, os, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402  (nodes, newdisk, primary lookup)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR[:CONFIG]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mode", default="sync", choices=["sync", "async"])
    ap.add_argument("--rw", default="randwrite")
    ap.add_argument("--bs", default="4k")
    ap.add_argument("--qd", type=int, default=32)
    ap.add_argument("--ramp", type=int, default=8)
    ap.add_argument("--runtime", type=int, default=12)
    args = ap.parse_args()
    builds = []
    for b in args.build:
        name, _, rest = b.partition("=")
        directory, _, config = rest.partition(":")
        if not os.path.isfile(os.path.join(directory, "cloudfs.dll")):
            sys.exit(f"cluster_ab: {directory} holds no cloudfs.dll")
        runner = os.path.join(tempfile.mkdtemp(prefix="cloudfs-ab-"), "cloudfs")
        with open(runner, "w") as f:
            f.write(f'#!/bin/sh\nexec dotnet "{os.path.abspath(directory)}/cloudfs.dll" "$@"\n')
        os.chmod(runner, 0o755)
        builds.append((name, runner, config or None))
    results = {name: [] for name, _, _ in builds}
    for r in range(args.rounds):
        for name, runner, config in (builds if r % 2 == 0 else list(reversed(builds))):
            cb.CLOUDFS = runner
            work = tempfile.mkdtemp(prefix="cloudfs-ab-")
            nodes = [cb.Node(a, os.path.join(work, f"n{i}.dev"), "4G", cb.THREE, work, config) for i, a in enumerate(cb.THREE)]
            try:
                for n in nodes:
                    n.start()
                cb.until(lambda: cb.members_up(cb.THREE[0], 3), 120, "three members Up")
                volume = cb.newdisk3("256M", args.mode, nodes)
                primary = {n.host_id: n for n in nodes}[cb.primary_of(volume, cb.THREE[0])]
                out = subprocess.run(["fio", "--name=ab", "--ioengine=nbd", f"--uri={primary.nbd(volume)}", "--size=256M",
                                      f"--rw={args.rw}", f"--bs={args.bs}", f"--iodepth={args.qd}", "--time_based",
                                      f"--ramp_time={args.ramp}", f"--runtime={args.runtime}", "--output-format=terse",
                                      "--terse-version=3"], capture_output=True, text=True, check=True).stdout
                fields = out.strip().splitlines()[-1].split(";")
                iops, lat_us = float(fields[48]), float(fields[80])  # terse v3: write IOPS, write clat mean (µs)
                results[name].append(iops)
                print(f"round {r + 1} {name}: {iops:,.0f} IOPS, mean latency {lat_us / 1000:.2f} ms "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
            finally:
                for n in nodes:
                    if n.proc and n.proc.poll() is None:
                        n.kill9()
                subprocess.run(["rm", "-rf", work])
    for name, _, _ in builds:
        print(f"{name}: median {statistics.median(results[name]):,.0f} IOPS ({', '.join(f'{x:,.0f}' for x in results[name])})")


if __name__ == "__main__":
    main()
