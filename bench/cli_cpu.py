#!/usr/bin/env python3
"""The CLI's own cost per command: CPU (user + system) and wall time of one `dotnet cloudfs.dll CMD` process, median of
9, builds alternating (a build is a copy of CloudFs.Host/bin/Release/net10.0). CPU time is what the command costs
whatever the machine's load; wall time on a quiet machine is what an operator waits.

  bench/cli_cpu.py CONTACT VOLUME NAME=DIR [NAME=DIR ...]    (CONTACT a running node's address, VOLUME one of its volumes)"""
import subprocess, statistics, resource, time, os, sys
contact, vol = sys.argv[1], sys.argv[2]
builds = [a.split("=", 1) for a in sys.argv[3:]]
def run(d, args):
    t = time.time(); r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["dotnet", d + "/cloudfs.dll", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, time.time() - t)
for args in (["--version"], ["ls", "--contact", contact], ["status", "--contact", contact], ["info", vol, "--contact", contact]):
    res = {n: [] for n, _ in builds}
    for i in range(9):
        for n, d in (builds if i % 2 == 0 else list(reversed(builds))):
            res[n].append(run(d, args))
    print(f"{args[0]:10s} " + "; ".join(f"{n}: CPU {statistics.median(c for c, _ in res[n]) * 1000:.0f} ms, wall {statistics.median(w for _, w in res[n]) * 1000:.0f} ms" for n, _ in builds) + f" (load {os.getloadavg()[0]:.1f})", flush=True)
