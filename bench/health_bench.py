#!/usr/bin/env python3
"""Issue 15's health, A/B against another checkout, rounds alternating (ABAB...), each on a fresh 3-node cluster on
127.0.20.51-53 (async volume of 1 GiB, 3 replicas):

1. `cloudfs ls` wall time (a process each, median of --calls) with every replica current, and with one replica host
   stopped after --write-mib MiB were written (placement then also asks the primary for the stopped replica's lag
   in bytes: one more round trip per listing while a replica lags);
2. catch-up: the stopped host restarted, seconds from its ready line until its /heads line of the volume equals the
   primary's (the follower's path, which now reports its progress while it catches up).

Prints Markdown lines for BENCHMARKS.md. Usage: bench/health_bench.py --build new=. --build main=../wt-health-base
"""
import argparse, http.client, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

READY = re.compile(r"^cloudfs: node ([0-9a-f]{40}) ready")
ADDRS = ["127.0.20.51", "127.0.20.52", "127.0.20.53"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Node:
    def __init__(self, repo, addr, device):
        self.addr = addr
        args = [os.path.join(repo, "cloudfs"), "node", "--listen", addr, "--device", device, "--size", "2G", "--seeds", ",".join(ADDRS)]
        self.err = open(device + ".err", "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.err, text=True)
        end = time.time() + 300
        for line in self.proc.stdout:
            m = READY.match(line)
            if m:
                self.host = m.group(1)
                self.ready = time.perf_counter()
                return
            if time.time() > end:
                break
        raise RuntimeError(f"node {addr} did not get ready: see {device}.err")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def cli(dll, *args, check=True):
    r = subprocess.run([*dll, *args], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise RuntimeError(f"cloudfs {' '.join(args)}: {r.stderr.strip()}")
    return r


def head(addr, volume):
    try:
        c = http.client.HTTPConnection(addr, 8090, timeout=10)
        c.request("GET", "/heads")
        for line in c.getresponse().read().decode().splitlines():
            if line.startswith(volume + ":"):
                return line
    except OSError:
        pass
    return None


FAILED_LS = []


def ls_median(dll, calls):
    """Median of the calls that succeeded; a failed call (the cluster did not answer in time, on a loaded machine) is
    logged, counted in FAILED_LS and asked again."""
    times = []
    while len(times) < calls:
        t = time.perf_counter()
        r = cli(dll, "ls", "--contact", ADDRS[0], check=False)
        if r.returncode != 0:
            FAILED_LS.append(r.stderr.strip())
            log(f"ls failed: {r.stderr.strip()}")
            if len(FAILED_LS) > 20:
                raise RuntimeError("ls keeps failing")
            continue
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def qemu_write(addr, volume, pattern, offset_mib, mib):
    subprocess.run(["qemu-io", "-f", "raw", "-c", f"write -P {pattern} {offset_mib}M {mib}M", f"nbd://{addr}:10809/{volume}"],
                   check=True, capture_output=True, timeout=600)


def round_of(name, repo, work, args):
    cli([os.path.join(repo, "cloudfs")], "--help")   # builds when needed, outside the timings
    dll = ["dotnet", os.path.join(repo, "CloudFs.Host/bin/Release/net10.0/cloudfs.dll")]
    devices = [os.path.join(work, f"{name}{i}.log") for i in range(3)]
    for d in devices:
        if os.path.exists(d):
            os.remove(d)
    nodes = [Node(repo, a, d) for a, d in zip(ADDRS, devices)]
    try:
        end = time.time() + 120
        while True:
            r = cli(dll, "newdisk", "3", "--mode", "async", "--size", "1G", "--contact", ADDRS[0], check=False)
            if r.returncode == 0:
                vol = r.stdout.strip()
                break
            if time.time() > end:
                raise RuntimeError(r.stderr)
            time.sleep(0.5)
        v = next(x for x in json.loads(cli(dll, "ls", "--json", "--contact", ADDRS[0]).stdout) if x["id"] == vol)
        primary = next(i for i, n in enumerate(nodes) if n.host == v["primary"])
        replica = 2 if primary == 1 else 1      # not node 0: it runs placement
        qemu_write(ADDRS[primary], vol, "0x11", 0, 16)
        while head(ADDRS[replica], vol) != head(ADDRS[primary], vol):
            time.sleep(0.05)
        healthy = ls_median(dll, args.calls)
        nodes[replica].stop()
        qemu_write(ADDRS[primary], vol, "0x22", 16, args.write_mib)
        time.sleep(2)   # placement sees the member gone (a benchmark, not a test)
        degraded = ls_median(dll, args.calls)
        nodes[replica] = Node(repo, ADDRS[replica], devices[replica])
        target = head(ADDRS[primary], vol)
        while head(ADDRS[replica], vol) != target:
            time.sleep(0.02)
        catch_up = time.perf_counter() - nodes[replica].ready
        return healthy, degraded, catch_up
    finally:
        for n in nodes:
            n.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", action="append", required=True, help="NAME=CHECKOUT")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=7)
    p.add_argument("--write-mib", type=int, default=128)
    args = p.parse_args()
    builds = [(b.split("=", 1)[0], os.path.abspath(b.split("=", 1)[1])) for b in args.build]
    work = tempfile.mkdtemp(prefix="health-bench-")
    results = {name: [] for name, _ in builds}
    try:
        for r in range(args.rounds):
            for name, repo in (builds if r % 2 == 0 else builds[::-1]):
                res = round_of(name, repo, work, args)
                log(f"round {r + 1} {name}: ls healthy {res[0]:.3f} s, ls degraded {res[1]:.3f} s, catch-up of {args.write_mib} MiB {res[2]:.2f} s")
                results[name].append(res)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| build | `ls` all current (median s) | `ls` one replica stopped, {args.write_mib} MiB behind (median s) | catch-up of {args.write_mib} MiB (median s, rounds) |")
    print("|---|---|---|---|")
    for name, rs in results.items():
        print(f"| {name} | {statistics.median(x[0] for x in rs):.3f} | {statistics.median(x[1] for x in rs):.3f} | "
              f"{statistics.median(x[2] for x in rs):.2f} ({', '.join(f'{x[2]:.2f}' for x in rs)}) |")
    if FAILED_LS:
        print(f"\n{len(FAILED_LS)} `ls` call(s) failed and were asked again: {FAILED_LS[0]}")


if __name__ == "__main__":
    main()
