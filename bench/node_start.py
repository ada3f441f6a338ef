# Seconds and process CPU (the node's own, from /proc) from spawning `cloudfs node` to its "is up" line, for each build
# given as NAME=PATH/cloudfs.dll, alternating, 3 rounds, medians. The node runs alone on 127.0.32.9 (akka 24053, HTTP
# 28090, NBD 20809) with a fresh 1 GiB log, and is stopped once up.
# Usage: python3 bench/node_start.py main=/tmp/main/CloudFs.Host/bin/Release/net10.0/cloudfs.dll new=CloudFs.Host/bin/Release/net10.0/cloudfs.dll
import os, subprocess, sys, time, tempfile, shutil
builds = dict(b.split('=') for b in sys.argv[1:])
tick = os.sysconf('SC_CLK_TCK')
def cpu(pid):
    total = 0
    for p in [pid] + [int(c) for c in open(f'/proc/{pid}/task/{pid}/children').read().split()]:
        f = open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()
        total += int(f[11]) + int(f[12])
    return total / tick
res = {k: [] for k in builds}
for r in range(3):
    for name, dll in builds.items():
        d = tempfile.mkdtemp()
        t = time.time()
        p = subprocess.Popen(['nice', '-n', '19', 'dotnet', dll, 'node', '--listen', '127.0.32.9', '--device', f'{d}/n.log', '--size', '1G',
                              '--akka-port', '24053', '--http-port', '28090', '--nbd-port', '20809'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        w = c = None
        for line in p.stdout:
            if 'is up at' in line:
                w = time.time() - t; c = cpu(p.pid); break
        p.terminate(); p.wait(); shutil.rmtree(d)
        if w is None: sys.exit(f'{name}: the node exited before it was up')
        res[name].append((w, c)); print(name, f'wall {w:.2f} s cpu {c:.2f} s', flush=True)
for k, v in res.items():
    ws = sorted(x[0] for x in v); cs = sorted(x[1] for x in v)
    print(f'RESULT {k}: median wall {ws[1]:.2f} s, cpu {cs[1]:.2f} s')
