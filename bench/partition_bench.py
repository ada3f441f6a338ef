#!/usr/bin/env python3
"""Failover after a network partition (issue 13: the time PartitionEndToEndTests checks the outcome of, measured here):
three `./cloudfs node` processes, each in its own network namespace on one bridge (as the test's NetnsLab: 10.77.X.1-3,
the root namespace on 10.77.X.254), a sync volume on all three. Per round the primary's link is cut; the time from the
cut until a sync write through a node of the majority side is acknowledged (each attempt a `qemu-io` under 5 s, like a
client that reconnects) is printed, not asserted. The link then comes back, the old primary rejoins (restarted when it
stopped after being downed) and every node reaches the same head before the next round.

Needs root (`ip netns`, veth links), iproute2 and qemu-io. Node output in bench/out/partition-*/, kept when a run fails
or with PARTITION_BENCH_KEEP=1. Every node is stopped and the namespaces removed at the end, also on Ctrl-C.
"""
import argparse, os, random, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402  (Node, cli, until, heads_agree, primary_of, qemu_write)


class Lab:
    """N namespaces with a veth each into one bridge in the root namespace; undone in reverse on close."""

    def __init__(self, count):
        if os.geteuid() != 0:
            raise SystemExit("partition_bench needs root for `ip netns` and veth links")
        used = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
        self.subnet = next(x for x in random.sample(range(1, 255), 254) if f"10.77.{x}." not in used)
        self.id = f"{random.randrange(16 ** 4):04x}"
        self.count = count
        self.undo = []
        bridge = f"cfsbr-{self.id}"
        self.ip(["link", "add", bridge, "type", "bridge"], ["link", "del", bridge])
        self.ip(["addr", "add", f"10.77.{self.subnet}.254/24", "dev", bridge])
        self.ip(["link", "set", bridge, "up"])
        for i in range(count):
            ns, outside, inside = self.namespace(i), self.outside(i), f"cfsn{i + 1}-{self.id}"
            self.ip(["netns", "add", ns], ["netns", "del", ns])
            self.ip(["-n", ns, "link", "set", "lo", "up"])
            self.ip(["link", "add", outside, "type", "veth", "peer", "name", inside, "netns", ns], ["link", "del", outside])
            self.ip(["link", "set", outside, "master", bridge])
            self.ip(["link", "set", outside, "up"])
            self.ip(["-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inside])
            self.ip(["-n", ns, "link", "set", inside, "up"])

    def namespace(self, i):
        return f"cfs{i + 1}-{self.id}"

    def outside(self, i):
        return f"cfsv{i + 1}-{self.id}"

    def address(self, i):
        return f"10.77.{self.subnet}.{i + 1}"

    def ip(self, args, undo=None):
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)
        if undo:
            self.undo.append(undo)

    def cut(self, i):
        self.ip(["link", "set", self.outside(i), "down"])

    def heal(self, i):
        self.ip(["link", "set", self.outside(i), "up"])

    def close(self):
        for args in reversed(self.undo):
            subprocess.run(["ip", *args], capture_output=True, timeout=30)
        self.undo.clear()


def majority_write(node, volume, r):
    """One sync write through NODE, bounded to 5 s like a client that reconnects."""
    try:
        out = subprocess.run(["timeout", "5", "qemu-io", "-f", "raw", "-c", f"write -P 0x{0x40 + r:x} {8 + r}M 64k",
                              "-c", "flush", node.nbd(volume)], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0


def three_up(nodes):
    """Three members Up and reachable, asked through a live node; a node that stopped (downed by the split brain
    resolver and not rejoined by itself) is restarted."""
    for n in nodes:
        if not n.alive():
            cb.log(f"{n.addr} stopped (exit {n.proc.returncode}); restarting it")
            n.start()
    return cb.members_up(next(n.addr for n in nodes if n.alive()), 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=os.path.join(cb.REPO, "bench", "out"))
    args = ap.parse_args()
    cb.nb.need("qemu-io")
    subprocess.run([cb.CLOUDFS, "--help"], check=True, capture_output=True, cwd=cb.REPO)  # build outside the namespaces
    os.makedirs(args.dir, exist_ok=True)
    work = tempfile.mkdtemp(dir=args.dir, prefix="partition-")
    cb.log(f"work directory {work}")

    def on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    keep = bool(os.environ.get("PARTITION_BENCH_KEEP"))
    lab, nodes = None, []
    try:
        lab = Lab(3)
        seeds = [lab.address(i) for i in range(3)]
        # --insecure: the namespaces' addresses are not loopback, and this is about partitions, not trust.
        nodes = [cb.Node(lab.address(i), os.path.join(work, f"n{i}.dev"), "2G", seeds, work,
                         prefix=["ip", "netns", "exec", lab.namespace(i)], extra=["--insecure"]) for i in range(3)]
        for n in nodes:
            n.start()
        cb.until(lambda: three_up(nodes), 120, "three members Up")
        volume = cb.cli("newdisk", "3", "--size", "64M", "--mode", "sync", "--contact", seeds[0]).strip()
        by_id = {n.host_id: n for n in nodes}
        if not cb.qemu_write(nodes[1].nbd(volume), "write -P 0x5a 0 1M", timeout=120):
            raise RuntimeError(f"a first write to {volume} failed")
        times = []
        for r in range(args.rounds):
            cb.until(lambda: three_up(nodes), 180, "three members Up and reachable")
            cb.until(lambda: cb.heads_agree(nodes, volume), 120, "heads agree before the cut")
            primary = by_id[cb.primary_of(volume, seeds[0])]
            i = nodes.index(primary)
            other = next(n for n in nodes if n is not primary)
            t0 = time.time()
            lab.cut(i)
            cb.until(lambda: majority_write(other, volume, r), 120,
                     f"a sync write through {other.addr} after {primary.addr} was cut off", every=0.05)
            took = time.time() - t0
            times.append(took)
            cb.log(f"round {r + 1}: cut off the primary {primary.addr}; a sync write through {other.addr} after {took:.2f} s")
            lab.heal(i)
        print(f"\npartition (the sync primary's link cut -> a sync write through the majority side acknowledged), "
              f"{len(times)} rounds: median {statistics.median(times):.2f} s, max {max(times):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times)})", flush=True)
    except BaseException:
        keep = True
        raise
    finally:
        for n in nodes:
            n.kill9() if keep else n.stop()
        if lab:
            lab.close()
        if keep:
            cb.log(f"node output kept in {work}")
            for f in os.listdir(work):
                if f.endswith(".dev"):
                    os.remove(os.path.join(work, f))
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
