#!/usr/bin/env bash
# Data and sequence parallelism under mpirun, for every registered family (`eat info --families`,
# each with its recipes/<family>_tiny.toml): np=2 and np=4 (sp=1), and sp=2 on 2 and 4 ranks for
# the families that support sequence parallelism, take the same steps as one process with the same global batch; a run checkpointed at np=2
# resumes at np=1 and np=4 with the same sample order, and every family's run checkpointed at np=2
# (sp=2 where it splits sequences) resumes in one process; bad layouts fail on every rank with one clear line, never hang.
# Usage: test_data_parallel.sh path/to/eat   (from the repository root)
set -euo pipefail
EAT=$1
source "$(dirname "$0")/parity_common.sh"

every_family_parity 4
while read -r family _; do
  [ -f "$tmp/runs/${family}_np2/checkpoints/step_00000005/state.json" ] || fail "$family np=2 wrote no checkpoint"
  grep -q '"world_size": 2' "$tmp/runs/${family}_np2/checkpoints/step_00000005/state.json" || fail "state.json world size"
done <<< "$(registered_families)"

# Resume on another world size: 8 steps straight at np=2, against 4 at np=2 then 4 more at np=1
# (and at np=4). The data position is counted in global samples, so the sample order carries on.
resume_case() {  # name, world size of the second half
  local name=$1 np=$2
  "${MPIRUN[@]}" -np 2 "$EAT" train recipes/transformer_tiny.toml "${common[@]}" --set "run.name=$name" \
    --set train.steps=8 --set checkpoint.every=4 --set eval.every=0 > /dev/null
  rm -rf "$tmp/runs/$name/checkpoints/step_00000008"
  if [ "$np" -eq 1 ]; then
    "$EAT" train recipes/transformer_tiny.toml "${common[@]}" --set "run.name=$name" --set train.steps=8 \
      --set checkpoint.every=4 --set eval.every=0 --set train.micro_batch=1 > "$tmp/resume.log"
  else
    "${MPIRUN[@]}" -np "$np" "$EAT" train recipes/transformer_tiny.toml "${common[@]}" --set "run.name=$name" \
      --set train.steps=8 --set checkpoint.every=4 --set eval.every=0 > "$tmp/resume.log"
  fi
  grep -q "resumed from .*step_00000004" "$tmp/resume.log" || fail "$name did not resume from step 4"
}
"${MPIRUN[@]}" -np 2 "$EAT" train recipes/transformer_tiny.toml "${common[@]}" --set run.name=straight \
  --set train.steps=8 --set checkpoint.every=4 --set eval.every=0 > /dev/null
resume_case resume_np1 1
resume_case resume_np4 4
same_losses "$tmp/runs/straight" "$tmp/runs/resume_np1" "np=2 -> np=1 resume"
same_losses "$tmp/runs/straight" "$tmp/runs/resume_np4" "np=2 -> np=4 resume"

# Every family: a run checkpointed at np=2 (sp=2 where the family splits sequences) resumes in one
# process and takes the same steps as one straight run.
while read -r family sp_support <&3; do
  eight=("recipes/${family}_tiny.toml" "${common[@]}" --set train.steps=8 --set checkpoint.every=4 --set eval.every=0
         --set train.micro_batch=1)
  sp=1
  [ "$sp_support" = sp ] && sp=2
  "$EAT" train "${eight[@]}" --set "run.name=${family}_straight" > /dev/null
  "${MPIRUN[@]}" -np 2 "$EAT" train "${eight[@]}" --set "run.name=${family}_split" --set parallel.sp=$sp > /dev/null
  rm -rf "$tmp/runs/${family}_split/checkpoints/step_00000008"
  "$EAT" train "${eight[@]}" --set "run.name=${family}_split" > "$tmp/resume.log"
  grep -q "resumed from .*step_00000004" "$tmp/resume.log" || fail "$family did not resume from step 4"
  same_losses "$tmp/runs/${family}_straight" "$tmp/runs/${family}_split" "$family np=2 sp=$sp -> np=1 resume"
done 3<<< "$(registered_families)"

# Bad layouts: every rank exits non-zero with the reason; nothing hangs (ctest's timeout would say so).
if err=$("${MPIRUN[@]}" -np 2 "$EAT" train recipes/transformer_tiny.toml "${common[@]}" --set run.name=bad \
          --set train.steps=2 --set parallel.sp=4 --set data.seq_len=32 2>&1); then fail "sp=4 on 2 ranks accepted"; fi
echo "$err" | grep -q "parallel.sp = 4 does not divide the world size 2" || fail "sp error: $err"
if err=$("${MPIRUN[@]}" -np 2 "$EAT" train recipes/transformer_tiny.toml "${common[@]}" --set run.name=bad \
          --set train.steps=2 --set train.global_batch=3 2>&1); then fail "global batch 3 on 2 ranks accepted"; fi
echo "$err" | grep -q "does not split over 2 data-parallel ranks" || fail "batch error: $err"
echo "data parallel: all checks passed"
