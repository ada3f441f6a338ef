#!/bin/bash
# A/B of the diff bench (bench/CloudFs.Bench/DiffBench.cs): BASE_DLL and NEW_DLL are two builds' CloudFs.Bench.dll,
# run alternately ROUNDS times (default 2), nice 19; extra arguments go to the bench (default: 1 GiB in 4 KiB writes
# since FROM on a 1 TiB thin volume in a 3 GiB log at /tmp/diff-ab.log). Prints each run's RESULT line.
set -euo pipefail
base=${BASE_DLL:?BASE_DLL: the base build\'s CloudFs.Bench.dll}
new=${NEW_DLL:?NEW_DLL: the new build\'s CloudFs.Bench.dll}
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--path /tmp/diff-ab.log --size 3G --bytes 1G --write 4K --before 64M)
for round in $(seq 1 "${ROUNDS:-2}"); do
  for side in base new; do
    dll=$base; [ $side = new ] && dll=$new
    echo "round $round $side: $(nice -n 19 dotnet "$dll" diff "${args[@]}" 2>&1 | grep RESULT)"
  done
done
