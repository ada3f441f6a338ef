#!/usr/bin/env python3
"""NBD over TLS vs plain NBD on the same CloudFS build, side by side (issue 12: TLS randwrite >= 0.8x of plain).

Makes a cluster authority and certificates with `./cloudfs cert`, starts two one-node clusters from this
repository's build, one with --tls (127.0.4.21) and one without (127.0.4.22), creates a volume on each, and runs the
same libnbd client against both, alternating round by round (plain, TLS, TLS, plain, ...): bench/nbd_load.py (random
4 KiB writes, 32 in flight on one connection; fio's nbd engine has no TLS, so fio cannot be the client for both), or
nbdcopy (--client nbdcopy: a 4 KiB-request copy of nbdkit's random plugin, sequential, 32 requests in flight). Reports
median IOPS, the ratio TLS / plain, and each node's CPU time per 1,000 requests (from /proc, user + system).
Everything stays on 127.0.4.21-22 and stops by itself.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOUDFS = os.path.join(REPO, "cloudfs")
LOAD = os.path.join(REPO, "bench", "nbd_load.py")
TLS_ADDR, PLAIN_ADDR = "127.0.4.21", "127.0.4.22"


def need(tool, package):
    if shutil.which(tool) is None:
        sys.exit(f"nbd_tls_bench: {tool} is not installed (apt-get install {package})")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_node(work, name, addr, extra):
    out = open(os.path.join(work, f"{name}.err"), "w")
    node = subprocess.Popen([CLOUDFS, "node", "--listen", addr, "--device", os.path.join(work, f"{name}.log"), "--size", "4G", *extra],
                            stdout=subprocess.PIPE, stderr=out, text=True)
    for line in node.stdout:
        if " ready (" in line:
            return node
    raise RuntimeError(f"the {name} node did not get ready; see {out.name}")


def run(args, uri, ops):
    if args.client == "nbdcopy":
        size = args.copy_size
        start = time.monotonic()
        subprocess.run(["nbdcopy", "--request-size=4096", f"--requests={args.qd}", "--connections=1", "--threads=1",
                        "--", "[", "nbdkit", "--exit-with-parent", "random", size, "]", uri], check=True, capture_output=True, timeout=600)
        return ops / (time.monotonic() - start)
    out = subprocess.run(["/usr/bin/python3", LOAD, uri, str(args.runtime), "--qd", str(args.qd)],
                         check=True, capture_output=True, text=True, timeout=args.runtime + 120)
    return float(out.stdout.strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runtime", type=int, default=10, help="seconds per run (libnbd client)")
    ap.add_argument("--qd", type=int, default=32)
    ap.add_argument("--size", default="1G", help="volume size")
    ap.add_argument("--client", choices=["libnbd", "nbdcopy"], default="libnbd")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load on each node first")
    ap.add_argument("--copy-size", default="256M", help="bytes nbdcopy writes per run")
    ap.add_argument("--dir", default=os.path.join(REPO, "bench", "out"), help="work directory (on the disk under test)")
    args = ap.parse_args()
    need("nbdinfo", "libnbd-bin")
    if args.client == "nbdcopy":
        need("nbdcopy", "libnbd-bin")
        need("nbdkit", "nbdkit")
    if subprocess.run(["/usr/bin/python3", "-c", "import nbd"], capture_output=True).returncode != 0:
        sys.exit("nbd_tls_bench: the system python has no nbd module (apt-get install python3-libnbd)")

    os.makedirs(args.dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tls-", dir=args.dir)
    nodes = []
    ok = False
    try:
        subprocess.run([CLOUDFS, "cert", "init", f"{work}/ca"], check=True, capture_output=True)
        subprocess.run([CLOUDFS, "cert", "issue", f"{work}/ca", "--host-id", "7e5700000000000000000000000000000000b001",
                        "--addr", TLS_ADDR, "--out", f"{work}/node"], check=True, capture_output=True)
        subprocess.run([CLOUDFS, "cert", "issue", f"{work}/ca", "--client", "bench", "--out", f"{work}/client"], check=True, capture_output=True)
        tls = start_node(work, "tls", TLS_ADDR, ["--tls", f"{work}/node"])
        nodes.append(tls)
        plain = start_node(work, "plain", PLAIN_ADDR, [])
        nodes.append(plain)
        volume = {}
        for name, addr, extra in (("tls", TLS_ADDR, ["--tls", f"{work}/client"]), ("plain", PLAIN_ADDR, [])):
            volume[name] = subprocess.run([CLOUDFS, "newdisk", "1", "--size", args.size, "--contact", addr, *extra], check=True,
                                          capture_output=True, text=True).stdout.strip()
        uris = {"plain": f"nbd://{PLAIN_ADDR}/{volume['plain']}",
                "tls": f"nbds://{TLS_ADDR}/{volume['tls']}?tls-certificates={work}/client"}
        pids = {"plain": plain.pid, "tls": tls.pid}
        ops = 0
        if args.client == "nbdcopy":
            suffix = args.copy_size[-1].upper()
            ops = int(args.copy_size[:-1]) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[suffix] // 4096
        # A short unmeasured run on each first: JIT and the volume actor's start-up are not what is compared.
        for name in ("plain", "tls"):
            warm = argparse.Namespace(**{**vars(args), "runtime": args.warmup, "copy_size": "32M"})
            run(warm, uris[name], 32 << 20 >> 12)
        iops = {"plain": [], "tls": []}
        cpu = {"plain": [], "tls": []}
        for r in range(args.rounds):
            for name in (("plain", "tls") if r % 2 == 0 else ("tls", "plain")):
                before = cpu_seconds(pids[name])
                value = run(args, uris[name], ops)
                used = cpu_seconds(pids[name]) - before
                requests = value * args.runtime if args.client == "libnbd" else ops
                iops[name].append(value)
                cpu[name].append(used / requests * 1000 * 1000)  # ms of node CPU per 1,000 requests
                print(f"round {r + 1} {name}: {value:,.0f} IOPS, node CPU {cpu[name][-1]:.1f} ms per 1,000 requests", file=sys.stderr)
        p, t = statistics.median(iops["plain"]), statistics.median(iops["tls"])
        print(f"| client | plain | TLS | TLS / plain | node CPU per 1,000 requests, plain / TLS |")
        print(f"|---|---|---|---|---|")
        shape = f"random 4 KiB writes, QD{args.qd}" if args.client == "libnbd" else f"sequential 4 KiB writes, QD{args.qd}"
        print(f"| {args.client}, {shape} | {p:,.0f} IOPS | {t:,.0f} IOPS | {t / p:.2f}x | "
              f"{statistics.median(cpu['plain']):.0f} ms / {statistics.median(cpu['tls']):.0f} ms |")
        print(f"runs: plain {', '.join(f'{v:,.0f}' for v in iops['plain'])}; tls {', '.join(f'{v:,.0f}' for v in iops['tls'])}")
        ok = True
    finally:
        for node in nodes:
            node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        # The work directory (certificates, the nodes' output) stays only when the run failed.
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for f in os.listdir(work):
                if f.endswith(".log"):
                    os.remove(os.path.join(work, f))
            print(f"nbd_tls_bench: the nodes' output is in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
