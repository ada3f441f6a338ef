#!/usr/bin/env python3
"""Where --tls costs on a 3-node sync cluster: one build, a fresh cluster plain and then with --tls (or --modes), the
libnbd client (bench/nbd_load.py, QD random 4 KiB writes) on the sync volume's primary, `perf record -a -g` during the
measured run. Prints, per role (primary, both replicas together), perf samples per 1,000 requests by thread, by shared
object, by system call, and the samples under SslStream, side by side for the modes; and the feed frames per request
(chunks the primary sent, acknowledgements it got back). Needs perf; the nodes run with DOTNET_PerfMapEnabled=1
(and DOTNET_EnableWriteXorExecute=0, so that perf names JIT'd code).

  bench/tls_profile.py --build DIR [--ramp 30] [--runtime 10] [--addresses A,B,C] [--keep DIR]

Samples per 1,000 requests at -F 499 Hz: one sample is 2 ms of CPU, so 10 samples per 1,000 requests are 20 µs per
request. A run on a loaded machine moves every row, so compare the rows within one run."""
import argparse, collections, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402

FREQUENCY = 499
FRAME_METRICS = ("cloudfs_feed_chunks_total", "cloudfs_replica_acks_total")


def run(mode, args, certificates, data):
    """One cluster in MODE (plain or tls) under load; perf data to DATA. Returns (requests, {role: pids}, frames)."""
    cb.TLS = certificates if mode == "tls" else None
    if mode == "tls":
        os.environ["CLOUDFS_TLS"] = certificates["client"]
    else:
        os.environ.pop("CLOUDFS_TLS", None)
    work = tempfile.mkdtemp(prefix="tls-profile-")
    nodes = [cb.Node(a, os.path.join(work, f"n{i}.dev"), "4G", cb.THREE, work) for i, a in enumerate(cb.THREE)]
    load = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nbd_load.py")
    try:
        for n in nodes:
            n.start()
        cb.until(lambda: cb.members_up(cb.THREE[0], 3), 120, "three members Up")
        volume = cb.newdisk3("256M", "sync", nodes)
        primary = {n.host_id: n for n in nodes}[cb.primary_of(volume, cb.THREE[0])]
        uri = primary.nbd(volume)
        common = ["--qd", str(args.qd), "--bs", "4096"]
        subprocess.run(["/usr/bin/python3", load, uri, str(args.ramp), *common], check=True, capture_output=True,
                       timeout=args.ramp + 120)
        frames = {m: sum(n.metric(m) for n in nodes) for m in FRAME_METRICS}
        perf = subprocess.Popen(["perf", "record", "-F", str(FREQUENCY), "-g", "-a", "-o", data, "--", "sleep",
                                 str(args.runtime)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = subprocess.run(["/usr/bin/python3", load, uri, str(args.runtime), *common], check=True,
                             capture_output=True, text=True, timeout=args.runtime + 120).stdout
        perf.wait()
        requests = float(out.strip()) * args.runtime
        frames = {m: (sum(n.metric(m) for n in nodes) - frames[m]) / requests for m in FRAME_METRICS}
        roles = {"primary": {str(primary.proc.pid)},
                 "replicas": {str(n.proc.pid) for n in nodes if n is not primary}}
        print(f"{mode}: {requests / args.runtime:,.0f} IOPS (load {os.getloadavg()[0]:.1f}); feed chunks "
              f"{frames[FRAME_METRICS[0]]:.3f}, acknowledgements {frames[FRAME_METRICS[1]]:.3f} per request",
              flush=True)
        return requests, roles
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.kill9()
        subprocess.run(["rm", "-rf", work])


def samples(data, roles):
    """{role: Counter(row: samples)} from perf DATA: thread, shared object of the leaf, system call, SslStream."""
    script = subprocess.run(["perf", "script", "-i", data, "-F", "pid,comm,ip,sym,dso"], capture_output=True,
                            text=True, errors="replace").stdout
    by_pid = {pid: role for role, pids in roles.items() for pid in pids}
    out = {role: collections.Counter() for role in roles}
    head, stack = None, []

    def flush():
        role = by_pid.get(head[0]) if head else None
        if role is None:
            return
        rows = out[role]
        rows["all"] += 1
        rows["thread " + head[1]] += 1
        leaf = stack[0] if stack else "?"
        dso = leaf[leaf.rfind(" (") + 2:-1].rsplit("/", 1)[-1]
        managed = dso.startswith(("perf-", "memfd:doublemapper", "[JIT]"))
        rows["object " + ("managed code (JIT)" if managed else dso)] += 1
        call = next((f.split()[0] for f in stack if "__x64_sys_" in f), None)
        if call:
            rows["syscall " + call.replace("__x64_sys_", "")] += 1
        if any("System.Net.Security.SslStream" in f for f in stack):
            rows["under SslStream"] += 1
        if any("libcrypto" in f or "libssl" in f for f in stack[:1]):
            rows["in OpenSSL"] += 1

    for line in script.splitlines():
        if not line.strip():
            flush()
            head, stack = None, []
        elif not line.startswith((" ", "\t")):
            parts = line.split()
            i = next(k for k, p in enumerate(parts) if p.isdigit())
            head = (parts[i], " ".join(parts[:i]))
        else:
            frame = line.strip().split(" ", 1)
            stack.append(frame[1] if len(frame) > 1 else "?")
    flush()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="a directory holding cloudfs.dll (a copy of the Host's Release output)")
    ap.add_argument("--modes", default="plain,tls")
    ap.add_argument("--qd", type=int, default=32)
    ap.add_argument("--ramp", type=int, default=30)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--addresses", help="the three nodes' loopback addresses, comma-separated (default 127.0.0.51-53)")
    ap.add_argument("--keep", help="a directory to keep the perf data in (default: a temporary one, removed)")
    ap.add_argument("--rows", type=int, default=25)
    args = ap.parse_args()
    if args.addresses:
        cb.THREE = [a.strip() for a in args.addresses.split(",")]
    cb.CLOUDFS = cb.build_runner(args.build, "tls_profile")
    os.environ["DOTNET_PerfMapEnabled"] = "1"
    os.environ["DOTNET_EnableWriteXorExecute"] = "0"  # JIT'd code in one mapping perf can name
    keep = args.keep or tempfile.mkdtemp(prefix="tls-profile-data-")
    os.makedirs(keep, exist_ok=True)
    modes = args.modes.split(",")
    certificates = None
    if "tls" in modes:
        cb.make_certificates(tempfile.mkdtemp(prefix="tls-profile-ca-"), cb.THREE)
        certificates = cb.TLS
    table = {}
    for mode in modes:
        data = os.path.join(keep, f"perf-{mode}.data")
        requests, roles = run(mode, args, certificates, data)
        table[mode] = {role: {k: 1000 * v / requests for k, v in rows.items()}
                       for role, rows in samples(data, roles).items()}
    for role in ("primary", "replicas"):
        rows = sorted({k for m in modes for k in table[m][role]}, key=lambda k: -max(table[m][role].get(k, 0) for m in modes))
        print(f"\n{role}: perf samples per 1,000 requests ({1000 // FREQUENCY} ms of CPU each)")
        print(f"{'':58s}" + "".join(f"{m:>10s}" for m in modes))
        for k in rows[:args.rows]:
            print(f"{k[:58]:58s}" + "".join(f"{table[m][role].get(k, 0):10.2f}" for m in modes))
    if not args.keep:
        subprocess.run(["rm", "-rf", keep])


if __name__ == "__main__":
    main()
