#!/usr/bin/env python3
"""Where the CPU goes on a 3-node cluster under writes: starts three fresh nodes (the repository's ./cloudfs) on
127.0.0.51-53, creates a 3-replica volume (sync, or async with the argument "async"), runs fio randwrite 4k QD32
through its primary for 24 s and, over 8 s in the middle, prints each node's CPU (in total and per thread name, from
/proc/PID/task/*/stat), its replication counters from /metrics per second (with the entries feeds took from memory and read back from the
device), and fio's IOPS.

  python3 bench/cluster_cpu.py [sync|async]
"""
import os, sys, subprocess, time, tempfile, collections
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402
work = tempfile.mkdtemp(prefix="cpu-")
three = [cb.Node(a, os.path.join(work, f"n{i}.dev"), "4G", cb.THREE, work) for i, a in enumerate(cb.THREE)]
try:
    for n in three: n.start()
    cb.until(lambda: cb.members_up(cb.THREE[0], 3), 120, "up")
    mode = sys.argv[1] if len(sys.argv) > 1 else "sync"
    v = cb.newdisk3("256M", mode, three)
    by_id = {n.host_id: n for n in three}
    p = by_id[cb.primary_of(v, cb.THREE[0])]
    fio = subprocess.Popen(["fio", "--name=r", "--ioengine=nbd", f"--uri={p.nbd(v)}", "--size=256M", "--rw=randwrite", "--bs=4k", "--iodepth=32", "--time_based", "--runtime=24", "--output-format=terse", "--terse-version=3"], stdout=subprocess.PIPE, text=True)
    time.sleep(12)
    M = ["cloudfs_feed_chunks_total","cloudfs_feed_entries_total","cloudfs_replica_chunks_total","cloudfs_replica_acks_total","cloudfs_writes_total",
         'cloudfs_stream_entries_total{source="memory"}','cloudfs_stream_entries_total{source="device"}']
    m0 = {n.addr: {k: n.metric(k) for k in M} for n in three}
    c0 = {n.addr: (cb.cpu_seconds(n.proc.pid), cb.thread_cpu_seconds(n.proc.pid)) for n in three}; f0 = cb.cpu_seconds(fio.pid); t0 = time.time()
    time.sleep(8)
    c1 = {n.addr: (cb.cpu_seconds(n.proc.pid), cb.thread_cpu_seconds(n.proc.pid)) for n in three}; f1 = cb.cpu_seconds(fio.pid); dt = time.time() - t0
    m1 = {n.addr: {k: n.metric(k) for k in M} for n in three}
    for n in three:
        d = {k: m1[n.addr][k]-m0[n.addr][k] for k in M}
        print(n.addr, {k.replace("cloudfs_","").replace("_total",""): round(v/dt) for k,v in d.items()}, "per s")
    out = fio.communicate()[0]; f = out.split(";")
    print("fio write iops", f[48], "(whole run incl. first 12 s)")
    print(f"window {dt:.1f} s; fio cpu {(f1-f0)/dt*100:.0f}%")
    for n in three:
        a = n.addr; tot = (c1[a][0]-c0[a][0])/dt*100
        print(f"{a} {'PRIMARY' if n is p else 'replica'} cpu {tot:.0f}%")
        agg = collections.Counter()
        for t,(comm,seconds) in c1[a][1].items():
            b = c0[a][1].get(t, (comm, 0))[1]
            name = comm.rstrip("0123456789") if not comm.startswith(".NET") else comm
            agg[name] += seconds - b
        for name, seconds in agg.most_common(8):
            print(f"    {name:28s} {seconds/dt*100:5.1f}%")
finally:
    for n in three: n.kill9()
