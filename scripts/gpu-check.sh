#!/usr/bin/env bash
# Everything a GPU machine should check, in one call: for a machine that is lent for minutes, has
# CUDA, CMake and a compiler but no package registry and no MPI.
#
#   scripts/gpu-check.sh [LOG_DIR]        (default: gpu-check-logs)
#
# 1. header-only dependencies from .deps/usr (made beforehand where apt works with
#    `scripts/header-deps.sh .deps`, then copied along), or unpacked now when apt works here;
# 2. configure build-gpu/ without MPI, CUDA for this machine's GPU (EAT_GPU_ARCH overrides,
#    e.g. 90), and build only `eat` and the gpu tests, with every core;
# 3. `ctest -L gpu`; compute-sanitizer memcheck, synccheck, racecheck and initcheck, each over a
#    subset of the gpu cases, when the tool is there and works (EAT_SANITIZE_CASE overrides the
#    subsets; see below);
# 4. the CUDA benches (`eat bench ops --device cuda` where it exists, `eat bench lightning-cuda`);
# 5. 20 bf16 training steps of every recipes/*_125m_gpu.toml at seq_len 2048 (data/kjv when
#    present, made when the `bible` program is there, else the repository's own text);
# and prints one summary table last. Full logs go to LOG_DIR. Without a GPU it still configures and
# builds, reports the gpu tests skipped and stops there (exit 0): the path checked off a GPU.
# Exit status: 1 when the build fails or any test, sanitizer run, bench or training run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"  # nvcc and compute-sanitizer where the toolkit is not on PATH
logs=${1:-gpu-check-logs}
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
build=build-gpu
summary=()
failed=0
note() { summary+=("$(printf '%-34s %s' "$1" "$2")"); }
bad() { note "$1" "FAIL: $2"; failed=1; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

print_summary() {
  echo
  echo "==== gpu-check summary (logs in $logs) ===="
  printf '%s\n' "${summary[@]}"
  [ "$failed" -eq 0 ] && echo "result: OK" || echo "result: FAILED"
}

# ---- 1. dependencies
if [ ! -d .deps/usr ]; then
  scripts/header-deps.sh .deps >"$logs/deps.log" 2>&1 || {
    bad "header-only deps" "no .deps/usr and apt cannot fetch them (run scripts/header-deps.sh .deps where apt works)"
    print_summary; exit 1; }
fi

# ---- 2. configure and build
gpu_present=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >"$logs/nvidia-smi.log" 2>&1; then gpu_present=1; fi
arch=${EAT_GPU_ARCH:-}
if [ -z "$arch" ]; then
  arch=90  # Hopper, when the GPU cannot be asked
  if [ "$gpu_present" -eq 1 ]; then
    cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
    [ -n "$cc" ] && arch=$cc
  fi
fi
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
start=$(date +%s)
if ! cmake -S . -B "$build" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release -DEAT_MPI=OFF -DEAT_CUDA=ON \
     -DEAT_TESTS=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCMAKE_PREFIX_PATH="$PWD/.deps/usr" >"$logs/configure.log" 2>&1; then
  bad "configure" "see configure.log"; tail -20 "$logs/configure.log"; print_summary; exit 1
fi
if ! cmake --build "$build" -j"$(nproc)" --target eat test_gpu >"$logs/build.log" 2>&1; then
  bad "build (sm_$arch)" "see build.log"; grep -m20 -E "error|Error" "$logs/build.log"; print_summary; exit 1
fi
note "build (sm_$arch, no MPI)" "ok in $(elapsed "$start")"

# ---- 3. gpu tests
start=$(date +%s)
ctest --test-dir "$build" -L gpu --output-on-failure >"$logs/ctest-gpu.log" 2>&1
results=$(grep -E "Test +#[0-9]+: " "$logs/ctest-gpu.log")
passed=$(grep -c "Passed" <<<"$results")
skipped=$(grep -c "Skipped" <<<"$results")
failures=$(grep -vE "Passed|Skipped" <<<"$results" | sed -E 's/.*Test +#[0-9]+: ([^ ]+).*/\1/')
nfail=$(printf '%s' "$failures" | grep -c . || true)
if [ "$nfail" -gt 0 ]; then
  bad "ctest -L gpu" "$nfail failed, $passed passed, $skipped skipped ($(elapsed "$start"))"
  while read -r t; do [ -n "$t" ] && note "  failed" "$t"; done <<<"$failures"
else
  note "ctest -L gpu" "$passed passed, $skipped skipped ($(elapsed "$start"))"
fi
if [ "$gpu_present" -eq 0 ]; then
  note "GPU" "none found: tests skipped; sanitizer, benches and training not run"
  print_summary; exit "$failed"
fi

# ---- compute-sanitizer: each tool over a subset of the gpu cases (doctest -tc filters), with a
# time limit; a run cut at its limit still fails when it reported an error before. memcheck and
# synccheck (out-of-bounds and misaligned accesses, leaks, illegal barriers) take a broad set: the
# op table, the attention and Lightning kernels, the state sum, odd-offset views, T = 0. racecheck
# and initcheck track every shared-memory access and every global load, so they take small cases
# that still reach every kernel family: the odd-offset views (cuBLAS, norms, softmax, activations,
# rope, short convolution, cross-entropy, attention, Lightning, state ops at tiny sizes), plus the
# Lightning sweep's full chunks (racecheck) and flash attention's query-offset masks (initcheck).
# EAT_SANITIZE_CASE replaces every tool's subset. At most 3.5 minutes in all (the limits below).
sanitize() {  # tool, doctest filters, time limit in seconds
  local tool=$1 cases=${EAT_SANITIZE_CASE:-$2} limit=$3 log="$logs/sanitizer-$1.log" rc=0
  local start
  start=$(date +%s)
  timeout "$limit" compute-sanitizer --tool "$tool" --error-exitcode 3 "$build/test_gpu" -tc="$cases" >"$log" 2>&1 || rc=$?
  if grep -qE "Device not supported|error 999|Unable to|not supported on this" "$log"; then
    note "compute-sanitizer $tool" "not usable on this machine (see $(basename "$log"))"
  elif grep -qE "ERROR SUMMARY: [1-9]|^========= (Invalid|Race|Barrier|Uninitialized|Program hit)" "$log"; then
    bad "compute-sanitizer $tool" "errors reported (see $(basename "$log"))"
  elif [ "$rc" -eq 124 ]; then
    note "compute-sanitizer $tool" "no error before the ${limit}s limit (cut there; see $(basename "$log"))"
  elif [ "$rc" -ne 0 ]; then
    bad "compute-sanitizer $tool" "exit $rc (see $(basename "$log"))"
  else
    note "compute-sanitizer $tool" "clean ($(elapsed "$start"))"
  fi
}
if command -v compute-sanitizer >/dev/null 2>&1; then
  broad="op table on CUDA*,cuda flash attention: queries*,cuda lightning: output*,cuda state sum: the state*"
  broad+=",cuda ops on odd-offset views*,T = 0*"
  sanitize memcheck "$broad" 75
  sanitize synccheck "$broad" 45
  sanitize racecheck "cuda ops on odd-offset views*,cuda lightning: output*" 45
  sanitize initcheck "cuda ops on odd-offset views*,cuda flash attention: queries*" 45
else
  note "compute-sanitizer" "not installed: memcheck, synccheck, racecheck, initcheck not run"
fi

# ---- 4. CUDA benches
eat="$build/eat"
benches=()
"$eat" bench --help 2>&1 | grep -q "ops" && benches+=("ops --device cuda --quick")
benches+=("lightning-cuda --quick")
for b in "${benches[@]}"; do
  log="$logs/bench-$(echo "$b" | cut -d' ' -f1).log"
  start=$(date +%s)
  # shellcheck disable=SC2086
  if timeout 300 "$eat" bench $b >"$log" 2>&1; then note "bench $b" "ok ($(elapsed "$start")), see $(basename "$log")"
  else bad "bench $b" "see $(basename "$log")"; fi
done

# ---- 5. training steps
data_args=()
if [ ! -f data/kjv/train.tok ] && command -v bible >/dev/null 2>&1; then "$eat" data prepare kjv >"$logs/data.log" 2>&1; fi
if [ ! -f data/kjv/train.tok ]; then
  # No KJV: the repository's own text, enough for a few steps' timing (samples wrap around epochs).
  find . -path ./"$build" -prune -o \( -name '*.md' -o -name '*.cpp' -o -name '*.h' \) -print | sort | xargs cat >"$logs/corpus.txt"
  "$eat" data tokenize --text "$logs/corpus.txt" --out "$logs/data" >"$logs/data.log" 2>&1
  data_args=(--set "data.train=$logs/data/train.tok" --set "data.val=$logs/data/val.tok")
  note "training data" "repository text (no data/kjv)"
fi
for recipe in recipes/*_125m_gpu.toml; do
  name=$(basename "$recipe" .toml)
  start=$(date +%s)
  if timeout 400 "$eat" train "$recipe" --resume never "${data_args[@]}" --set run.out_dir="$logs/runs" \
       --set train.steps=20 --set schedule.warmup=2 --set data.seq_len=2048 --set train.global_batch=32 \
       --set train.micro_batch=8 --set checkpoint.every=0 --set eval.every=0 --set log.every=5 \
       >"$logs/train-$name.log" 2>&1; then
    # tokens/s and MFU: the median of steps 3..20 (the first steps allocate and warm up).
    stats=$(python3 - "$logs/runs/$name/metrics.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if "tokens_per_s" in r and r["step"] > 2]
tps = statistics.median(r["tokens_per_s"] for r in rows)
mfu = statistics.median(r["mfu"] for r in rows)
mem = max(r.get("device_peak_allocated", 0) for r in rows) / 2**30
print(f"{tps:,.0f} tokens/s, MFU {100 * mfu:.1f}%, peak {mem:.1f} GiB, loss {rows[-1]['loss']:.3f}")
EOF
)
    note "train $name" "${stats:-ran} ($(elapsed "$start"))"
  else
    bad "train $name" "see train-$name.log"; tail -5 "$logs/train-$name.log"
  fi
done
print_summary
exit "$failed"
