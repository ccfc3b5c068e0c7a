#!/usr/bin/env bash
# The data- and sequence-parallel parity of test_data_parallel.sh on GPUs: every registered family
# (`eat info --families`) trains 5 steps with train.device = "cuda" in one process and under
# mpirun on 2 GPUs (sp=1, and sp=2 for the families that support sequence parallelism; on 4 GPUs
# also np=4 and sp=2 x dp=2), one GPU per rank, gradients and states moved by NCCL; the losses
# agree within 1e-5 relative. Skipped (exit 77) unless `nvidia-smi -L` lists at least 2 GPUs.
# Usage: test_multi_gpu.sh path/to/eat   (from the repository root)
set -euo pipefail
EAT=$1
gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU ' || true)
if [ "${gpus:-0}" -lt 2 ]; then
  echo "multi-GPU parity skipped: ${gpus:-0} GPU(s) visible, needs 2"
  exit 77
fi
source "$(dirname "$0")/parity_common.sh"

families=$("$EAT" info --families)
[ -n "$families" ] || fail "eat info --families listed nothing"
while read -r family sp_support <&3; do  # fd 3: mpirun forwards stdin to rank 0
  recipe=recipes/${family}_tiny.toml
  [ -f "$recipe" ] || fail "family $family has no $recipe"
  five=("$recipe" "${common[@]}" --set train.steps=5 --set checkpoint.every=0 --set eval.every=0 --set train.device=cuda)
  "$EAT" train "${five[@]}" --set "run.name=${family}_np1" --set train.micro_batch=1 > /dev/null
  "${MPIRUN[@]}" -np 2 "$EAT" train "${five[@]}" --set "run.name=${family}_np2" --set train.micro_batch=1 > /dev/null
  same_losses "$tmp/runs/${family}_np1" "$tmp/runs/${family}_np2" "$family on 2 GPUs vs 1"
  if [ "$gpus" -ge 4 ]; then
    "${MPIRUN[@]}" -np 4 "$EAT" train "${five[@]}" --set "run.name=${family}_np4" > /dev/null
    same_losses "$tmp/runs/${family}_np1" "$tmp/runs/${family}_np4" "$family on 4 GPUs vs 1"
  fi
  if [ "$sp_support" = sp ]; then
    "${MPIRUN[@]}" -np 2 "$EAT" train "${five[@]}" --set "run.name=${family}_sp2" --set parallel.sp=2 \
      --set train.micro_batch=1 > /dev/null
    same_losses "$tmp/runs/${family}_np1" "$tmp/runs/${family}_sp2" "$family sp=2 on 2 GPUs vs 1"
    if [ "$gpus" -ge 4 ]; then
      "${MPIRUN[@]}" -np 4 "$EAT" train "${five[@]}" --set "run.name=${family}_sp2dp2" --set parallel.sp=2 > /dev/null
      same_losses "$tmp/runs/${family}_np1" "$tmp/runs/${family}_sp2dp2" "$family sp=2 dp=2 on 4 GPUs vs 1"
    fi
  fi
done 3<<< "$families"
echo "multi-GPU parity: all checks passed on $gpus GPUs"
