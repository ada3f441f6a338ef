#!/usr/bin/env python3
"""Sustained overwrites vs writes into an empty log, side by side in one run (issue 11).

Each round starts a fresh `./cloudfs node` on a fresh log (--log-size, default 4G) and a volume of a quarter of it,
then runs fio over NBD (--rw write --bs 1M --iodepth 8 by default):
  1. "empty":     one pass over the volume into the empty log;
  2. "fill":      --fill passes (default 2) that take the rest of the free segments (not compared);
  3. "sustained": --passes passes (default 6) of overwrites, every one of which needs compaction to free segments.
The ratio sustained / empty is the number of the issue (goal >= 0.5x), with the median over the rounds; sustained /
fill compares with writes into free segments by a node that is warmed up as much (the first pass into a fresh node
is also its warm-up: JIT, first touch of the file), the stricter of the two. After each
round the node's compaction metrics are printed (passes, segments freed, bytes copied, writes that waited for room,
writes refused). Any fio error fails the run. Node output goes to bench/out/space-*/ (kept when the run fails, or
always with SPACE_BENCH_KEEP=1; the log files are deleted).
"""
import argparse, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOUDFS = os.path.join(REPO, "cloudfs")


def fio(uri, args, size, loops):
    cmd = ["fio", "--name=space", "--ioengine=nbd", f"--uri={uri}", f"--rw={args.rw}", f"--bs={args.bs}",
           f"--iodepth={args.iodepth}", f"--size={size}", f"--loops={loops}", "--output-format=json"]
    if args.rw.startswith("rand"):
        # Every block once per pass, in a random order (a random map, not with replacement).
        cmd += ["--randrepeat=0"]
    start = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    elapsed = time.time() - start
    if out.returncode != 0:
        raise RuntimeError(f"fio failed ({loops} x {size} {args.rw}): {out.stderr.strip()[:600]}")
    job = json.loads(out.stdout[out.stdout.index("{"):])["jobs"][0]
    if job.get("error", 0):
        raise RuntimeError(f"fio reported error {job['error']}")
    return job["write"]["bw_bytes"] / 1e6, elapsed


def metrics(listen):
    text = urllib.request.urlopen(f"http://{listen}:8090/metrics", timeout=30).read().decode()
    want = ["cloudfs_compaction_passes_total", "cloudfs_compaction_freed_segments_total",
            "cloudfs_compaction_copied_bytes_total", "cloudfs_log_space_waits_total", "cloudfs_log_space_refused_total",
            "cloudfs_log_free_segments", "cloudfs_log_segments", "cloudfs_log_live_bytes"]
    found = {}
    for name in want:
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        found[name] = float(m.group(1)) if m else float("nan")
    return found


def start_node(args, work, r):
    out = open(os.path.join(work, f"node-{r}.out"), "w")
    device = os.path.join(work, "cloudfs.log")
    node = subprocess.Popen([CLOUDFS, "node", "--listen", args.listen, "--device", device, "--size", args.log_size]
                            + (["--config", args.config] if args.config else []),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.time() + 300
    for line in node.stdout:
        out.write(line)
        if " ready (" in line:
            break
        if time.time() > end or node.poll() is not None:
            raise RuntimeError("the cloudfs node did not get ready")
    # Keep draining its output so it never blocks on a full pipe.
    import threading
    threading.Thread(target=lambda: [out.write(l) for l in node.stdout], daemon=True).start()
    return node, device


def stop(node):
    if node.poll() is None:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log-size", default="4G")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fill", type=int, default=2, help="passes after the first that still find free segments")
    ap.add_argument("--passes", type=int, default=6, help="measured overwrite passes")
    ap.add_argument("--rw", default="write")
    ap.add_argument("--bs", default="1M")
    ap.add_argument("--iodepth", type=int, default=8)
    ap.add_argument("--listen", default="127.0.1.2")
    ap.add_argument("--config", help="a config file for the node (e.g. compaction settings)")
    args = ap.parse_args()
    if shutil.which("fio") is None:
        sys.exit("space_bench: fio is not installed (apt-get install fio)")
    log_bytes = int(subprocess.run(["numfmt", "--from=iec", args.log_size], capture_output=True, text=True, check=True).stdout)
    volume = f"{log_bytes // 4 // (1 << 20)}M"
    os.makedirs(os.path.join(REPO, "bench", "out"), exist_ok=True)
    work = tempfile.mkdtemp(prefix="space-", dir=os.path.join(REPO, "bench", "out"))
    rows, ok = [], False
    try:
        for r in range(args.rounds):
            node, device = start_node(args, work, r)
            try:
                vol = subprocess.run([CLOUDFS, "newdisk", "1", "--size", volume, "--contact", args.listen],
                                     capture_output=True, text=True, check=True).stdout.strip()
                uri = f"nbd://{args.listen}:10809/{vol}"
                empty, _ = fio(uri, args, volume, 1)
                fill, _ = fio(uri, args, volume, args.fill) if args.fill > 0 else (float("nan"), 0)
                sustained, secs = fio(uri, args, volume, args.passes)
                m = metrics(args.listen)
            finally:
                stop(node)
                if os.path.exists(device):
                    os.remove(device)
            rows.append((empty, fill, sustained, secs, m))
            print(f"round {r + 1}: empty {empty:,.0f} MB/s, fill {fill:,.0f} MB/s, sustained {sustained:,.0f} MB/s "
                  f"({sustained / empty:.2f}x) over {args.passes} x {volume} in {secs:.1f} s; compaction passes "
                  f"{m['cloudfs_compaction_passes_total']:.0f}, segments freed {m['cloudfs_compaction_freed_segments_total']:.0f}, "
                  f"copied {m['cloudfs_compaction_copied_bytes_total'] / 1e6:,.0f} MB, writes that waited "
                  f"{m['cloudfs_log_space_waits_total']:.0f}, refused {m['cloudfs_log_space_refused_total']:.0f}",
                  file=sys.stderr)
        ok = True
    finally:
        if ok and not os.environ.get("SPACE_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"space_bench: node output kept in {work}", file=sys.stderr)
    med = lambda i: statistics.median(x[i] for x in rows)
    ratios = [x[2] / x[0] for x in rows]
    warm = [x[2] / x[1] for x in rows]
    print(f"\n| log | volume | fio | into the empty log | fill | sustained overwrites | sustained / empty (goal >= 0.5x) | sustained / fill |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.log_size} | {volume} | {args.rw} {args.bs} qd{args.iodepth}, {args.passes} passes | {med(0):,.0f} MB/s | "
          f"{med(1):,.0f} MB/s | {med(2):,.0f} MB/s | **{statistics.median(ratios):.2f}x** "
          f"({', '.join(f'{x:.2f}' for x in ratios)}) | {statistics.median(warm):.2f}x ({', '.join(f'{x:.2f}' for x in warm)}) |")


if __name__ == "__main__":
    main()
