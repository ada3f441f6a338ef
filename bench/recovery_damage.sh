#!/usr/bin/env bash
# Recovery time of a filled 4 GiB log after a crash, with no damage against one damaged entry rolled forward (a bad
# stored block, and a header beyond correction), alternating, ROUNDS rounds; medians and ratios (issue 11: <= 1 s, as
# without). Usage: bench/recovery_damage.sh [DIR (default /tmp)] ; env ROUNDS=5 SIZE=4G
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-/tmp}"; rounds="${ROUNDS:-5}"; size="${SIZE:-4G}"
dotnet build "$here/CloudFs.Bench" -c Release -nologo -v quiet >/dev/null
bench="$here/CloudFs.Bench/bin/Release/net10.0/CloudFs.Bench"
log="$dir/cloudfs-recovery-bench.log"
trap 'rm -f "$log" "$log.keys"' EXIT
declare -A times
for r in $(seq 1 "$rounds"); do
  for d in none block header; do
    t="$("$bench" recovery --path "$log" --size "$size" --damage "$d" | tee /dev/stderr | awk '/^RESULT/{print $3}')"
    times[$d]+="$t "
  done
done
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.3f}')" "$@"; }
n=$(median ${times[none]}); b=$(median ${times[block]}); h=$(median ${times[header]})
echo "recovery of a $size log, median of $rounds: no damage $n s; a bad block $b s ($(python3 -c "print(f'{$b/$n:.2f}')")x); a header beyond correction $h s ($(python3 -c "print(f'{$h/$n:.2f}')")x)"
