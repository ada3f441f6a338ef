#!/usr/bin/env bash
# Unthrottled scrub against fio's O_DIRECT sequential read of a file of the same size on the same disk, alternating
# round by round, medians and ratios (shared/BENCHMARKING.md). Usage: bench/scrub.sh [DIR (default /tmp)]
# env ROUNDS=5 SIZE=4G (log file) BYTES=3G (live data in the log, and the fio file) WRITE=1M (the writes that filled it)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-/tmp}"
rounds="${ROUNDS:-5}"; size="${SIZE:-4G}"; bytes="${BYTES:-3G}"; write="${WRITE:-1M}"
command -v fio >/dev/null || { echo "scrub.sh: fio is not installed (apt-get install fio)" >&2; exit 1; }
dotnet build "$here/CloudFs.Bench" -c Release -nologo -v quiet >/dev/null
bench="$here/CloudFs.Bench/bin/Release/net10.0/CloudFs.Bench"
log="$dir/cloudfs-scrub-bench.log"; raw="$dir/cloudfs-scrub-bench-fio.dat"
trap 'rm -f "$log" "$log.keys" "$raw"' EXIT

# Both files are written once, then only read: the log by the scrub, the plain file by fio.
"$bench" scrub --path "$log" --size "$size" --bytes "$bytes" --write "$write" >/dev/null
fio --name=fill --filename="$raw" --size="$bytes" --rw=write --bs=1M --iodepth=16 --ioengine=libaio --direct=1 --end_fsync=1 >/dev/null 2>&1

fio_read() { fio --output-format=json --name=seq --filename="$raw" --size="$bytes" --rw=read --direct=1 "$@" 2>/dev/null \
  | python3 -c "import json,sys; print('%.1f' % (json.load(sys.stdin)['jobs'][0]['read']['bw_bytes']/1e6))"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

declare -a f16 f1 sc
for r in $(seq 1 "$rounds"); do
  f16+=("$(fio_read --bs=1M --iodepth=16 --ioengine=libaio)")
  sc+=("$("$bench" scrub --path "$log" --size "$size" --reuse yes | awk '/^RESULT/{print $3}')")
  f1+=("$(fio_read --bs=4M --iodepth=1 --ioengine=psync)")
  echo "round $r/$rounds: fio 1M QD16 ${f16[-1]} MB/s   scrub ${sc[-1]} MB/s   fio 4M QD1 ${f1[-1]} MB/s" >&2
done
m16=$(median "${f16[@]}"); m1=$(median "${f1[@]}"); ms=$(median "${sc[@]}")
printf '%-26s %10s %8s %s\n' reference MB/s "scrub/it" goal
printf '%-26s %10.1f %8.2f %s\n' "fio read 1M QD16 libaio" "$m16" "$(python3 -c "print($ms/$m16)")" ">= 0.5"
printf '%-26s %10.1f %8.2f %s\n' "fio read 4M QD1 psync" "$m1" "$(python3 -c "print($ms/$m1)")" "-"
printf '%-26s %10.1f\n' "scrub (unthrottled)" "$ms"
