# Sourced by the parity scripts of this folder (test_data_parallel.sh on CPUs, test_multi_gpu.sh
# on GPUs): a scratch directory with a tokenized text, the tiny-run settings, mpirun, and the loss
# comparison. Expects EAT (the eat binary) to be set and `set -euo pipefail`.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none)

for i in $(seq 1 3000); do echo "line $((i % 17)) the king went up to the city of $((i % 5))."; done > "$tmp/text.txt"
"$EAT" data tokenize --text "$tmp/text.txt" --out "$tmp/data" > /dev/null

common=(--set "run.out_dir=$tmp/runs" --set "data.train=$tmp/data/train.tok" --set "data.val=$tmp/data/val.tok"
        --set model.d_model=32 --set model.n_heads=4 --set data.seq_len=32 --set schedule.warmup=1
        --set train.global_batch=4 --set train.micro_batch=0 --set eval.max_tokens=256 --set log.peak_gflops=100)

losses() { grep '"loss"' "$1/metrics.jsonl" | sed 's/.*"loss":\([^,}]*\).*/\1/'; }
# Same number of lines and every pair within 1e-5 relative.
same_losses() {
  paste <(losses "$1") <(losses "$2") | awk -v what="$3" '
    { n++; d = $1 - $2; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2; if (d > 1e-5 * s) { print "FAIL: " what ": step " n ": " $1 " vs " $2; bad = 1 } }
    END { if (n == 0) { print "FAIL: " what ": no losses"; bad = 1 } exit bad }' >&2
  [ "$(losses "$1" | wc -l)" -eq "$(losses "$2" | wc -l)" ] || fail "$3: different step counts"
}

# Trains `family` 5 steps in one process, then under mpirun on 2 ranks (sp=1, and sp=2 when the
# family supports sequence parallelism: LASP-2 / LASP-2H, 2 ranks share each sequence) and, when
# max_np >= 4, on 4 ranks (sp=1, and sp=2 x dp=2): every run takes the same steps as the single
# process with the same global batch, one sequence per forward as there (a model whose aux loss is
# per micro-batch, MoH's load balance, depends on it). Runs land in $tmp/runs/<family>_<layout>.
# Usage: family_parity family sp_support max_np [--set key=value ...]
family_parity() {
  local family=$1 sp_support=$2 max_np=$3
  shift 3
  local recipe=recipes/${family}_tiny.toml
  [ -f "$recipe" ] || fail "family $family has no $recipe"
  local five=("$recipe" "${common[@]}" --set train.steps=5 --set checkpoint.every=0 --set eval.every=0 "$@")
  local one=$tmp/runs/${family}_np1
  "$EAT" train "${five[@]}" --set "run.name=${family}_np1" --set train.micro_batch=1 > /dev/null
  "${MPIRUN[@]}" -np 2 "$EAT" train "${five[@]}" --set "run.name=${family}_np2" --set train.micro_batch=1 > /dev/null
  same_losses "$one" "$tmp/runs/${family}_np2" "$family np=2 vs np=1"
  if [ "$max_np" -ge 4 ]; then
    "${MPIRUN[@]}" -np 4 "$EAT" train "${five[@]}" --set "run.name=${family}_np4" > /dev/null
    same_losses "$one" "$tmp/runs/${family}_np4" "$family np=4 vs np=1"
  fi
  [ "$sp_support" = sp ] || return 0
  "${MPIRUN[@]}" -np 2 "$EAT" train "${five[@]}" --set "run.name=${family}_sp2" --set parallel.sp=2 \
    --set train.micro_batch=1 > /dev/null
  same_losses "$one" "$tmp/runs/${family}_sp2" "$family np=2 sp=2 vs np=1"
  if [ "$max_np" -ge 4 ]; then
    "${MPIRUN[@]}" -np 4 "$EAT" train "${five[@]}" --set "run.name=${family}_sp2dp2" --set parallel.sp=2 \
      --set train.micro_batch=1 > /dev/null
    same_losses "$one" "$tmp/runs/${family}_sp2dp2" "$family np=4 sp=2 vs np=1"
  fi
}

# The families `eat info --families` lists, one "name sp_support" a line; fails when there are none.
registered_families() {
  local families
  families=$("$EAT" info --families)
  [ -n "$families" ] || fail "eat info --families listed nothing"
  echo "$families"
}

# family_parity for every registered family. Usage: every_family_parity max_np [--set key=value ...]
every_family_parity() {
  local families family sp_support
  families=$(registered_families)
  while read -r family sp_support <&3; do  # fd 3: mpirun forwards stdin to rank 0
    family_parity "$family" "$sp_support" "$@"
  done 3<<< "$families"
}
