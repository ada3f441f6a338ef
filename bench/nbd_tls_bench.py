#!/usr/bin/env python3
"""NBD over TLS vs plain NBD on the same CloudFS build, side by side (issue 12: TLS randwrite >= 0.8x of plain).

Makes a cluster authority and certificates with `./cloudfs cert`, starts two one-node clusters per build, one with
--tls and one without (this repository's build on 127.0.4.21 and 127.0.4.22 unless --build and --addresses say
otherwise), creates a volume on each, and runs the
same libnbd client against all, alternating round by round (plain, TLS, TLS, plain, ...): bench/nbd_load.py (random
4 KiB writes, 32 in flight on one connection; fio's nbd engine has no TLS, so fio cannot be the client for both), or
nbdcopy (--client nbdcopy: a 4 KiB-request copy of nbdkit's random plugin, sequential, 32 requests in flight). Reports
median IOPS, the ratio TLS / plain, and each node's CPU time per 1,000 requests (from /proc, user + system).
Everything stays on the addresses given and stops by itself.

  nbd_tls_bench.py [--build NAME=DIR ...] [--addresses TLS1,PLAIN1,TLS2,PLAIN2,...] [--rounds 4] [--runtime 10]

With several --build (DIR a copy of CloudFs.Host/bin/Release/net10.0), every round runs each build's plain and TLS
node in turn, the order reversed every other round, and the table has one line per build.
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


def start_node(work, cloudfs, name, addr, extra):
    out = open(os.path.join(work, f"{name}.err"), "w")
    node = subprocess.Popen([*cloudfs, "node", "--listen", addr, "--device", os.path.join(work, f"{name}.log"), "--size", "4G", *extra],
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
    ap.add_argument("--build", action="append", help="NAME=DIR, DIR a copy of CloudFs.Host/bin/Release/net10.0 (repeatable; default this repository's ./cloudfs)")
    ap.add_argument("--addresses", default=f"{TLS_ADDR},{PLAIN_ADDR}", help="loopback addresses, TLS then plain for each build in order")
    ap.add_argument("--dir", default=os.path.join(REPO, "bench", "out"), help="work directory (on the disk under test)")
    args = ap.parse_args()
    need("nbdinfo", "libnbd-bin")
    if args.client == "nbdcopy":
        need("nbdcopy", "libnbd-bin")
        need("nbdkit", "nbdkit")
    if subprocess.run(["/usr/bin/python3", "-c", "import nbd"], capture_output=True).returncode != 0:
        sys.exit("nbd_tls_bench: the system python has no nbd module (apt-get install python3-libnbd)")

    builds = []
    for spec in args.build or [f"this={os.path.dirname(CLOUDFS)}"]:
        name, _, folder = spec.partition("=")
        if spec == f"this={os.path.dirname(CLOUDFS)}":
            builds.append((name, [CLOUDFS]))
        elif not os.path.isfile(os.path.join(folder, "cloudfs.dll")):
            sys.exit(f"nbd_tls_bench: --build {spec}: no cloudfs.dll in {folder}")
        else:
            builds.append((name, ["dotnet", os.path.join(os.path.abspath(folder), "cloudfs.dll")]))
    addresses = args.addresses.split(",")
    if len(addresses) < 2 * len(builds):
        sys.exit(f"nbd_tls_bench: --addresses needs two per build (TLS, plain): {2 * len(builds)}")

    os.makedirs(args.dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tls-", dir=args.dir)
    nodes = []
    ok = False
    try:
        cli = builds[0][1]
        subprocess.run([*cli, "cert", "init", f"{work}/ca"], check=True, capture_output=True)
        subprocess.run([*cli, "cert", "issue", f"{work}/ca", "--client", "bench", "--out", f"{work}/client"], check=True, capture_output=True)
        uris, pids, sides = {}, {}, []
        for b, (build, cloudfs) in enumerate(builds):
            tls_addr, plain_addr = addresses[2 * b], addresses[2 * b + 1]
            subprocess.run([*cli, "cert", "issue", f"{work}/ca", "--host-id", f"7e57{b:032x}b001",
                            "--addr", tls_addr, "--out", f"{work}/node{b}"], check=True, capture_output=True)
            for mode, addr, node_extra, cli_extra in (("plain", plain_addr, [], []),
                                                      ("tls", tls_addr, ["--tls", f"{work}/node{b}"], ["--tls", f"{work}/client"])):
                side = (build, mode)
                node = start_node(work, cloudfs, f"{build}-{mode}", addr, node_extra)
                nodes.append(node)
                volume = subprocess.run([*cli, "newdisk", "1", "--size", args.size, "--contact", addr, *cli_extra], check=True,
                                        capture_output=True, text=True).stdout.strip()
                uris[side] = (f"nbds://{addr}/{volume}?tls-certificates={work}/client" if mode == "tls"
                              else f"nbd://{addr}/{volume}")
                pids[side] = node.pid
                sides.append(side)
        ops = 0
        if args.client == "nbdcopy":
            suffix = args.copy_size[-1].upper()
            ops = int(args.copy_size[:-1]) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[suffix] // 4096
        # A short unmeasured run on each first: JIT and the volume actor's start-up are not what is compared.
        for side in sides:
            warm = argparse.Namespace(**{**vars(args), "runtime": args.warmup, "copy_size": "32M"})
            run(warm, uris[side], 32 << 20 >> 12)
        iops = {side: [] for side in sides}
        cpu = {side: [] for side in sides}
        for r in range(args.rounds):
            for side in (sides if r % 2 == 0 else reversed(sides)):
                before = cpu_seconds(pids[side])
                value = run(args, uris[side], ops)
                used = cpu_seconds(pids[side]) - before
                requests = value * args.runtime if args.client == "libnbd" else ops
                iops[side].append(value)
                cpu[side].append(used / requests * 1000 * 1000)  # ms of node CPU per 1,000 requests
                label = side[1] if len(builds) == 1 else f"{side[0]} {side[1]}"
                print(f"round {r + 1} {label}: {value:,.0f} IOPS, node CPU {cpu[side][-1]:.1f} ms per 1,000 requests", file=sys.stderr)
        several = len(builds) > 1
        print(f"| {'build | ' if several else ''}client | plain | TLS | TLS / plain | node CPU per 1,000 requests, plain / TLS |")
        print(f"|{'---|' if several else ''}---|---|---|---|---|")
        shape = f"random 4 KiB writes, QD{args.qd}" if args.client == "libnbd" else f"sequential 4 KiB writes, QD{args.qd}"
        for build, _ in builds:
            p, t = statistics.median(iops[(build, "plain")]), statistics.median(iops[(build, "tls")])
            print(f"| {build + ' | ' if several else ''}{args.client}, {shape} | {p:,.0f} IOPS | {t:,.0f} IOPS | {t / p:.2f}x | "
                  f"{statistics.median(cpu[(build, 'plain')]):.0f} ms / {statistics.median(cpu[(build, 'tls')]):.0f} ms |")
        for build, _ in builds:
            prefix = f"{build}: " if several else ""
            print(f"runs: {prefix}plain {', '.join(f'{v:,.0f}' for v in iops[(build, 'plain')])}; "
                  f"tls {', '.join(f'{v:,.0f}' for v in iops[(build, 'tls')])}")
        if several:
            # Per round, each build's TLS over its own plain: the pairing cancels what the machine did that round.
            for build, _ in builds:
                ratios = [t / p for t, p in zip(iops[(build, "tls")], iops[(build, "plain")])]
                print(f"per-round TLS / plain, {build}: {', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})")
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
