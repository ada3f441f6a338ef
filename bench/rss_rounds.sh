#!/usr/bin/env bash
# A node's resident memory through rounds of the four fio shapes (issue 13's "peak RSS of a node under all shapes"):
# one node of this checkout, a 1 GiB volume filled once, then ROUNDS x (randwrite 4k QD32, syncwrite 4k QD1, seqwrite
# 1M QD16, randread 4k QD32, RUNTIME s each); VmRSS/VmHWM after each shape, and at the end the GC's committed heap
# beside the working set (dotnet-counters, when installed: `dotnet tool install -g dotnet-counters`), so memory that
# is not the managed heap shows. Run from the repository: `bench/rss_rounds.sh [HOST] [ROUNDS] [RUNTIME]`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
H=${1:-127.0.0.1}; ROUNDS=${2:-3}; RUNTIME=${3:-6}
mkdir -p "$here/bench/out"
work=$(mktemp -d "$here/bench/out/rss.XXXXXX")
trap 'kill $PID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$here/cloudfs" node --device "$work/log" --size 8G --listen "$H" --akka-port 4160 --http-port 8196 --nbd-port 10916 > "$work/node.out" 2>&1 &
PID=$!
for _ in $(seq 1 240); do grep -q ready "$work/node.out" && break; sleep 0.5; done
grep -q ready "$work/node.out" || { echo "the node did not get ready" >&2; cat "$work/node.out" >&2; exit 1; }
VOL=$("$here/cloudfs" newdisk 1 --size 1G --mode async --contact "$H:8196")
U="nbd://$H:10916/$VOL"
rss() { echo "$1: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' \t' ' ' | tr '\n' ' ')"; }
shape() { fio --name=b --ioengine=nbd --uri="$U" --size=1G --time_based --runtime="$RUNTIME" --output-format=terse "$@" > /dev/null; }
rss start
fio --name=fill --ioengine=nbd --uri="$U" --size=1G --rw=write --bs=1M --iodepth=16 --output-format=terse > /dev/null; rss prefill
for r in $(seq 1 "$ROUNDS"); do
  shape --rw=randwrite --bs=4k --iodepth=32; rss "round $r randwrite"
  shape --rw=write --bs=4k --iodepth=1 --fsync=1; rss "round $r syncwrite"
  shape --rw=write --bs=1M --iodepth=16; rss "round $r seqwrite"
  shape --rw=randread --bs=4k --iodepth=32; rss "round $r randread"
done
if command -v dotnet-counters > /dev/null || [ -x ~/.dotnet/tools/dotnet-counters ]; then
  counters=$(command -v dotnet-counters || echo ~/.dotnet/tools/dotnet-counters)
  "$counters" collect -p $PID --counters System.Runtime --format csv -o "$work/c.csv" --duration 00:00:00:04 > /dev/null 2>&1 || true
  grep -E "memory.committed_size|working_set|last_collection.heap.size" "$work/c.csv" | tail -8 | cut -d, -f3-5 | sort -u
fi
