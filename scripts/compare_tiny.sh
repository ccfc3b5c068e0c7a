#!/usr/bin/env bash
# Trains every recipes/*_tiny.toml for the same number of steps (8 sequences of 512 tokens each,
# so the same tokens) on the King James Bible, then compares the runs: the markdown table on
# stdout and in OUT/compare.md, the loss curves in OUT/compare.svg.
# Usage: scripts/compare_tiny.sh [STEPS [--set KEY=VALUE...]]   (default 300; from any directory)
#   The --set overrides go to every run, e.g. --set train.device=cuda or --set eval.max_tokens=4096.
#   EAT=path/to/eat (default build/eat), OUT=directory of the runs (default runs/compare_tiny),
#   relative to the repository root.
# Each run starts afresh: a previous run of the same recipe under OUT is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-300}
shift $(($# > 0 ? 1 : 0))
eat=${EAT:-build/eat}
out=${OUT:-runs/compare_tiny}
[ -x "$eat" ] || { echo "compare_tiny: no $eat; build it first (scripts/build.sh)" >&2; exit 1; }
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || { echo "compare_tiny: STEPS must be a positive integer, got '$steps'" >&2; exit 1; }
[ -f data/kjv/train.tok ] && [ -f data/kjv/val.tok ] || "$eat" data prepare kjv --out data/kjv

# The tiny recipes warm up for 20 steps; a shorter check run warms up for half its steps.
warmup=()
[ "$steps" -gt 20 ] || warmup=(--set "schedule.warmup=$((steps / 2))")
runs=()
for recipe in recipes/*_tiny.toml; do
  name=$(basename "$recipe" .toml)
  rm -rf "${out:?}/$name"
  echo "== $name: $steps steps" >&2
  # The step lines go to the console; the last one and the validation show each run's end.
  "$eat" train "$recipe" --resume never --set "run.out_dir=$out" --set "run.name=$name" --set "train.steps=$steps" "${warmup[@]}" "$@" \
    | grep -E "^step $steps(/| \|)" >&2
  runs+=("$out/$name")
done
"$eat" compare "${runs[@]}" --out "$out/compare.svg" | tee "$out/compare.md"
