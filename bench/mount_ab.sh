#!/usr/bin/env bash
# Mount A/B: one node of this checkout; `cloudfs mount` of another checkout (e.g. a built `git archive` of main) and of
# this one, alternating, three rounds: 64 MiB written and fsynced, then 300 writes of 4 KiB with O_DSYNC, through
# DIR/VOLUME. As root (FUSE, loop devices). Usage: bench/mount_ab.sh OTHER-CHECKOUT   (ADDR=127.0.51.31 by default)
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
AGAINST=${1:?usage: bench/mount_ab.sh OTHER-CHECKOUT}
ADDR=${ADDR:-127.0.51.31}
D=$(mktemp -d /tmp/mount-ab-XXXX)
"$HERE"/cloudfs node --listen $ADDR --device $D/node.log --size 2G > $D/node.out 2>&1 &
NODE=$!
for i in $(seq 1 120); do grep -q " ready " $D/node.out && break; sleep 1; done
V=$("$HERE"/cloudfs newdisk 1 --size 1G --contact $ADDR)
head -c $((64<<20)) /dev/urandom > $D/src
for round in 1 2 3; do
  for impl in other this; do
    if [ $impl = other ]; then BIN="$AGAINST"/cloudfs; else BIN="$HERE"/cloudfs; fi
    mkdir -p $D/m-$impl
    $BIN mount $D/m-$impl --contact $ADDR > $D/mount-$impl-$round.out 2>&1 &
    M=$!
    for i in $(seq 1 240); do grep -q "cloudfs: mounted" $D/mount-$impl-$round.out && break; sleep 0.5; done
    ls $D/m-$impl/$V > /dev/null 2>&1 || { sleep 2; ls $D/m-$impl/$V > /dev/null; }
    s=$(date +%s.%N); dd if=$D/src of=$D/m-$impl/$V/big.bin bs=1M conv=fsync status=none; e=$(date +%s.%N)
    w=$(echo "64 / ($e - $s)" | bc -l)
    s=$(date +%s.%N); dd if=/dev/zero of=$D/m-$impl/$V/small.bin bs=4k count=300 oflag=dsync status=none; e=$(date +%s.%N)
    q=$(echo "300 / ($e - $s)" | bc -l)
    printf "round %s %s: 64 MiB write+fsync %.1f MB/s, 4k dsync writes %.0f /s\n" $round $impl $w $q
    rm -f $D/m-$impl/$V/big.bin $D/m-$impl/$V/small.bin
    kill -TERM $M; wait $M
  done
done
kill -TERM $NODE; wait $NODE
rm -rf $D
