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
        --set model.d_model=32 --set model.n_heads=2 --set data.seq_len=32 --set schedule.warmup=1
        --set train.global_batch=4 --set train.micro_batch=0 --set eval.max_tokens=256 --set log.peak_gflops=100)

losses() { grep '"loss"' "$1/metrics.jsonl" | sed 's/.*"loss":\([^,}]*\).*/\1/'; }
# Same number of lines and every pair within 1e-5 relative.
same_losses() {
  paste <(losses "$1") <(losses "$2") | awk -v what="$3" '
    { n++; d = $1 - $2; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2; if (d > 1e-5 * s) { print "FAIL: " what ": step " n ": " $1 " vs " $2; bad = 1 } }
    END { if (n == 0) { print "FAIL: " what ": no losses"; bad = 1 } exit bad }' >&2
  [ "$(losses "$1" | wc -l)" -eq "$(losses "$2" | wc -l)" ] || fail "$3: different step counts"
}
