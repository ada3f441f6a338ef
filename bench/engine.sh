#!/usr/bin/env bash
# Engine benchmarks side by side with fio on the same disk (shared/BENCHMARKING.md): alternating, ROUNDS rounds,
# medians and ratios. Usage: bench/engine.sh [DIR (default /tmp)] ; env ROUNDS=3 SIZE=4G BYTES=3G SECONDS=10
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-/tmp}"
rounds="${ROUNDS:-3}"; size="${SIZE:-4G}"; bytes="${BYTES:-3G}"; seconds="${SECONDS_PER_RUN:-10}"
command -v fio >/dev/null || { echo "engine.sh: fio is not installed (apt-get install fio)" >&2; exit 1; }
dotnet build "$here/CloudFs.Bench" -c Release -nologo -v quiet >/dev/null
bench="$here/CloudFs.Bench/bin/Release/net10.0/CloudFs.Bench"
log="$dir/cloudfs-bench.log"; raw="$dir/cloudfs-bench-fio.dat"
trap 'rm -f "$log" "$log.keys" "$raw"' EXIT

fio_json() { fio --output-format=json --filename="$raw" --size="$size" --ioengine=libaio --direct=1 "$@" 2>/dev/null; }
field() { python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]['write']; print(j['$1'])"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

declare -a e1 f1 e4 f4 rec
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds" >&2
  f1+=("$(fio_json --name=seq --rw=write --bs=1M --iodepth=16 --io_size="$bytes" --end_fsync=1 | field bw_bytes | awk '{printf "%.1f", $1/1e6}')")
  rm -f "$raw"
  e1+=("$("$bench" append-1m --path "$log" --size "$size" --bytes "$bytes" | awk '/^RESULT/{print $3}')")
  f4+=("$(fio_json --name=rand --rw=randwrite --bs=4k --iodepth=32 --runtime="$seconds" --time_based | field iops | awk '{printf "%.0f", $1}')")
  rm -f "$raw"
  e4+=("$("$bench" append-4k --path "$log" --size "$size" --seconds "$seconds" | awk '/^RESULT/{print $3}')")
  rec+=("$("$bench" recovery --path "$log" --size "$size" | tee /dev/stderr | awk '/^RESULT/{print $3}')")
  echo "  fio seq 1M: ${f1[-1]} MB/s   engine append-1m: ${e1[-1]} MB/s   fio rand 4k: ${f4[-1]} IOPS   engine append-4k: ${e4[-1]} IOPS   recovery: ${rec[-1]} s" >&2
done
m_f1=$(median "${f1[@]}"); m_e1=$(median "${e1[@]}"); m_f4=$(median "${f4[@]}"); m_e4=$(median "${e4[@]}"); m_rec=$(median "${rec[@]}")
printf '%-12s %14s %14s %8s %s\n' benchmark engine fio ratio goal
printf '%-12s %11.1f MB/s %11.1f MB/s %8.2f %s\n' append-1m "$m_e1" "$m_f1" "$(python3 -c "print($m_e1/$m_f1)")" ">= 0.8"
printf '%-12s %11.0f IOPS %11.0f IOPS %8.2f %s\n' append-4k "$m_e4" "$m_f4" "$(python3 -c "print($m_e4/$m_f4)")" ">= 0.5"
printf '%-12s %13.3f s %14s %8s %s\n' recovery "$m_rec" "-" "-" "<= 2 s (log $size)"
