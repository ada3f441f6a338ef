#!/usr/bin/env python3
"""A/B of cloudfs builds on a 3-node cluster: fio through a sync (or async) volume's primary, the builds alternating
round by round (ABBA...), each round on a fresh cluster on 127.0.0.51-53 (or --addresses). Prints IOPS and mean latency per round and
the medians. For changes whose effect is smaller than the run-to-run noise of the full cluster benchmark.

  bench/cluster_ab.py --build before=/tmp/cf-a --build after=/tmp/cf-b[:/path/extra.conf] --rounds 3 [--qd 32]
  bench/cluster_ab.py --build head=CloudFs.Host/bin/Release/net10.0 --tls --rounds 4

A build is a directory holding cloudfs.dll (copy CloudFs.Host/bin/Release/net10.0 there); the optional config file is
passed to every node with --config. Environment variables for the nodes go in front of the command as usual.
--tls runs every build twice, as NAME (plain) and NAME+tls (every node with --tls: certificates from `cloudfs cert`,
made once per run), with the libnbd client bench/nbd_load.py for both (fio's nbd engine has no TLS): random writes of
--bs with --qd in flight on one connection to the primary, for --runtime s after --ramp s of the same unmeasured; it also prints the CPU the primary, the replicas (together) and the
client spent per 1,000 requests, which says where TLS costs independently of the machine's load."""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

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
    ap.add_argument("--tls", action="store_true", help="each build plain and with --tls, the libnbd client for both")
    ap.add_argument("--addresses", help="the three nodes' loopback addresses, comma-separated (default 127.0.0.51-53), "
                    "when that range is in use by something else")
    args = ap.parse_args()
    if args.addresses:
        cb.THREE = [a.strip() for a in args.addresses.split(",")]
        if len(cb.THREE) != 3:
            sys.exit("cluster_ab: --addresses takes three addresses")
    if args.tls:
        if subprocess.run(["/usr/bin/python3", "-c", "import nbd"], capture_output=True).returncode != 0:
            sys.exit("cluster_ab: --tls needs the system python's nbd module (apt-get install python3-libnbd)")
        if args.rw != "randwrite":
            sys.exit("cluster_ab: --tls measures random writes only (bench/nbd_load.py)")
    builds = []
    for b in args.build:
        name, _, rest = b.partition("=")
        directory, _, config = rest.partition(":")
        runner = cb.build_runner(directory, "cluster_ab")
        builds.append((name, runner, config or None, False))
        if args.tls:
            builds.append((name + "+tls", runner, config or None, True))
    certificates = None
    if args.tls:
        certificates = tempfile.mkdtemp(prefix="cloudfs-ab-tls-")
        cb.CLOUDFS = builds[0][1]
        cb.make_certificates(certificates, cb.THREE)
    tls = cb.TLS
    results = {name: [] for name, _, _, _ in builds}
    cpus = {name: [] for name, _, _, _ in builds}
    for r in range(args.rounds):
        for name, runner, config, with_tls in (builds if r % 2 == 0 else list(reversed(builds))):
            cb.CLOUDFS = runner
            cb.TLS = tls if with_tls else None
            if with_tls:
                os.environ["CLOUDFS_TLS"] = tls["client"]
            else:
                os.environ.pop("CLOUDFS_TLS", None)
            work = tempfile.mkdtemp(prefix="cloudfs-ab-")
            nodes = [cb.Node(a, os.path.join(work, f"n{i}.dev"), "4G", cb.THREE, work, config) for i, a in enumerate(cb.THREE)]
            try:
                for n in nodes:
                    n.start()
                cb.until(lambda: cb.members_up(cb.THREE[0], 3), 120, "three members Up")
                volume = cb.newdisk3("256M", args.mode, nodes)
                primary = {n.host_id: n for n in nodes}[cb.primary_of(volume, cb.THREE[0])]
                if args.tls:
                    iops, cpu = libnbd_load(primary.nbd(volume), args, nodes, primary)
                    results[name].append(iops)
                    cpus[name].append(cpu)
                    print(f"round {r + 1} {name}: {iops:,.0f} IOPS (libnbd, load {os.getloadavg()[0]:.1f}); CPU ms per "
                          f"1,000 requests: primary {cpu['primary']:.0f}, replicas {cpu['replicas']:.0f}, "
                          f"client {cpu['client']:.0f}; feed chunks per request {cpu['chunks']:.3f}, "
                          f"acknowledgements {cpu['acks']:.3f}, entries fed from the device {cpu['fed_from_device']:.3f}; "
                          f"primary's device reads {cpu['read']:,.0f} bytes per request", flush=True)
                    continue
                out = subprocess.run(["fio", "--name=ab", "--ioengine=nbd", f"--uri={primary.nbd(volume)}", "--size=256M",
                                      f"--rw={args.rw}", f"--bs={args.bs}", f"--iodepth={args.qd}", "--time_based",
                                      f"--ramp_time={args.ramp}", f"--runtime={args.runtime}", "--output-format=terse",
                                      "--terse-version=3"], capture_output=True, text=True, check=True).stdout
                fields = out.strip().splitlines()[-1].split(";")
                iops, lat_us = float(fields[48]), float(fields[80])  # terse v3: write IOPS, write clat mean (µs)
                results[name].append(iops)
                print(f"round {r + 1} {name}: {iops:,.0f} IOPS, mean latency {lat_us / 1000:.2f} ms "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
            except (RuntimeError, subprocess.CalledProcessError) as e:
                # On a loaded machine a cluster sometimes does not form (late heartbeats): that round is left out.
                print(f"round {r + 1} {name}: FAILED, left out ({str(e).splitlines()[0][:200]}; "
                      f"load {os.getloadavg()[0]:.1f})", flush=True)
            finally:
                for n in nodes:
                    if n.proc and n.proc.poll() is None:
                        n.kill9()
                subprocess.run(["rm", "-rf", work])
    for name, _, _, _ in builds:
        if not results[name]:
            print(f"{name}: no round completed")
            continue
        print(f"{name}: median {statistics.median(results[name]):,.0f} IOPS ({', '.join(f'{x:,.0f}' for x in results[name])})")
        if cpus[name]:
            print(f"{name}: median CPU ms per 1,000 requests: " + ", ".join(
                f"{part} {statistics.median(c[part] for c in cpus[name]):.0f}" for part in ("primary", "replicas", "client"))
                + "; feed chunks / acknowledgements / entries fed from the device per request " + ", ".join(
                f"{statistics.median(c[part] for c in cpus[name]):.3f}" for part in ("chunks", "acks", "fed_from_device")))
    if args.tls:
        for name, _, _, with_tls in builds:
            if with_tls and results[name] and results[name[:-len("+tls")]]:
                plain = results[name[:-len("+tls")]]
                per = ", ".join(f"{t / p:.2f}" for t, p in zip(results[name], plain) if p)
                print(f"{name} / plain: {statistics.median(results[name]) / statistics.median(plain):.2f}x "
                      f"(per round: {per})")
        shutil.rmtree(certificates, ignore_errors=True)


def device_read_bytes(pid):
    """Bytes a process has read from block devices so far (/proc/PID/io read_bytes)."""
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("read_bytes:"))


FRAME_METRICS = {"cloudfs_feed_chunks_total": "chunks", "cloudfs_replica_acks_total": "acks",
                 'cloudfs_stream_entries_total{source="device"}': "fed_from_device"}


def libnbd_load(uri, args, nodes, primary):
    """bench/nbd_load.py: an unmeasured ramp, then the measured run. Its requests per second, and the CPU the primary,
    the replicas and the client spent during the measured run, in ms per 1,000 requests."""
    load = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nbd_load.py")
    common = ["--qd", str(args.qd), "--bs", str(parse_size(args.bs))]
    subprocess.run(["/usr/bin/python3", load, uri, str(args.ramp), *common], check=True, capture_output=True, timeout=args.ramp + 120)
    before = {n.addr: cb.cpu_seconds(n.proc.pid) for n in nodes}
    frames_before = {m: sum(n.metric(m) for n in nodes) for m in FRAME_METRICS}
    read_before = device_read_bytes(primary.proc.pid)
    client = subprocess.Popen(["/usr/bin/python3", load, uri, str(args.runtime), *common], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    client_cpu = 0.0
    while client.poll() is None:  # the client's own CPU, read while it still runs (its /proc entry goes with it)
        try:
            client_cpu = cb.cpu_seconds(client.pid)
        except OSError:
            break
        time.sleep(0.2)
    out, err = client.communicate(timeout=args.runtime + 120)
    if client.returncode != 0:
        raise RuntimeError(f"nbd_load failed: {err.strip()[-200:]}")
    iops = float(out.strip())
    requests = iops * args.runtime / 1000
    spent = {n.addr: cb.cpu_seconds(n.proc.pid) - before[n.addr] for n in nodes}
    cpu = {"primary": 1000 * spent[primary.addr] / requests,
           "replicas": 1000 * sum(v for a, v in spent.items() if a != primary.addr) / requests,
           "client": 1000 * client_cpu / requests}
    # Feed frames per request, both replicas together: chunks the primary sent and acknowledgements it got back (each
    # one TLS record or more with --tls, and one socket write).
    for m, part in FRAME_METRICS.items():
        cpu[part] = (sum(n.metric(m) for n in nodes) - frames_before[m]) / (requests * 1000)
    # The client only writes: what the primary reads from its device is its feeders reading entries back that were no
    # longer in memory (RecentEntries; counted as fed_from_device), its background scrub, and compaction.
    cpu["read"] = (device_read_bytes(primary.proc.pid) - read_before) / (requests * 1000)
    return iops, cpu


def parse_size(text):
    units = {"k": 1 << 10, "m": 1 << 20}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].lower() in units else int(text)


if __name__ == "__main__":
    main()
