#!/usr/bin/env bash
# The engine benchmarks of two commits side by side (shared/BENCHMARKING.md): each commit's bench/CloudFs.Bench is
# built from `git archive` in a temp dir, then append-4k and append-1m run alternating, ROUNDS rounds, medians.
# Usage: bench/engine_ab.sh BASE NEW [DIR (default /tmp)] ; env ROUNDS=3 SIZE=2G BYTES=1G SECONDS_PER_RUN=5
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
base="${1:?usage: bench/engine_ab.sh BASE NEW [DIR]}"; new="${2:?usage: bench/engine_ab.sh BASE NEW [DIR]}"; dir="${3:-/tmp}"
rounds="${ROUNDS:-3}"; size="${SIZE:-2G}"; bytes="${BYTES:-1G}"; seconds="${SECONDS_PER_RUN:-5}"
work="$(mktemp -d "$dir/cloudfs-engine-ab.XXXXXX")"
log="$work/bench.log"
trap 'rm -rf "$work"' EXIT

for side in base new; do
  ref="$base"; [ "$side" = new ] && ref="$new"
  mkdir -p "$work/$side"
  git -C "$here/.." archive "$ref" | tar -x -C "$work/$side"
  dotnet build "$work/$side/bench/CloudFs.Bench" -c Release -nologo -v quiet >/dev/null
done
bin() { echo "$work/$1/bench/CloudFs.Bench/bin/Release/net10.0/CloudFs.Bench"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

declare -a b4 n4 b1 n1
a4() { "$(bin "$1")" append-4k --path "$log" --size "$size" --seconds "$seconds" 2>/dev/null | awk '/^RESULT/{print $3}'; }
a1() { "$(bin "$1")" append-1m --path "$log" --size "$size" --bytes "$bytes" 2>/dev/null | awk '/^RESULT/{print $3}'; }
for r in $(seq 1 "$rounds"); do
  # Which side goes first alternates round by round (the disk and the page cache remember the previous run).
  if (( r % 2 )); then b4+=("$(a4 base)"); n4+=("$(a4 new)"); n1+=("$(a1 new)"); b1+=("$(a1 base)")
  else n4+=("$(a4 new)"); b4+=("$(a4 base)"); b1+=("$(a1 base)"); n1+=("$(a1 new)"); fi
  echo "round $r/$rounds: append-4k base ${b4[-1]} new ${n4[-1]} IOPS; append-1m base ${b1[-1]} new ${n1[-1]} MB/s" >&2
done
m_b4=$(median "${b4[@]}"); m_n4=$(median "${n4[@]}"); m_b1=$(median "${b1[@]}"); m_n1=$(median "${n1[@]}")
# On a shared machine the load moves between rounds more than between the two runs of one round: the median of the
# per-round ratios is the figure to read.
ratios() { python3 -c "import statistics,sys; n=len(sys.argv)//2; print(statistics.median(float(b)/float(a) for a,b in zip(sys.argv[1:1+n], sys.argv[1+n:])))" "$@"; }
printf '%-10s %12s %12s %8s %14s\n' benchmark "base $base" "new $new" ratio "round ratios"
printf '%-10s %7.0f IOPS %7.0f IOPS %8.2f %14.2f\n' append-4k "$m_b4" "$m_n4" "$(python3 -c "print($m_n4/$m_b4)")" "$(ratios "${b4[@]}" "${n4[@]}")"
printf '%-10s %7.1f MB/s %7.1f MB/s %8.2f %14.2f\n' append-1m "$m_b1" "$m_n1" "$(python3 -c "print($m_n1/$m_b1)")" "$(ratios "${b1[@]}" "${n1[@]}")"
