#!/usr/bin/env bash
# The command line end to end, as a user drives it: tokenize text (bytes and SentencePiece subwords), train from a recipe with
# overrides, resume, evaluate (table and JSON, loss by position), generate text, export, compare runs,
# inspect (a model's logged aux terms too), MQAR data and eval --task mqar, the one-line errors of bad input, and the
# op benchmark.
# Usage: test_cli.sh path/to/eat   (run from the repository root)
set -euo pipefail
EAT=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in $(seq 1 3000); do echo "line $((i % 17)) the king went up to the city of $((i % 5))."; done > "$tmp/text.txt"
"$EAT" data tokenize --text "$tmp/text.txt" --out "$tmp/data" | grep -q "train.tok" || fail "data tokenize"

small=(--set "run.out_dir=$tmp/runs" --set "data.train=$tmp/data/train.tok" --set "data.val=$tmp/data/val.tok"
       --set model.d_model=32 --set model.n_heads=2 --set model.transformer.mlp_hidden=64 --set data.seq_len=32
       --set schedule.warmup=1 --set checkpoint.every=3 --set eval.every=3 --set eval.max_tokens=512 --set log.every=1)
out=$("$EAT" train recipes/transformer_tiny.toml "${small[@]}" --set train.steps=4)
echo "$out" | grep -q "family transformer" || fail "train prints no config summary"
echo "$out" | grep -Eq "peak from .* \| CPU code built for -march=[a-z0-9-]+.*, (AVX-512|AVX2|AVX|SSE)$" ||
  fail "train prints no CPU build target beside the peak: $out"
echo "$out" | grep -q "step 4/4 | loss" || fail "train prints no step line"
echo "$out" | grep -q "tok/s | mfu" || fail "train prints no throughput"
run="$tmp/runs/transformer_tiny"
[ -f "$run/loss.svg" ] || fail "no loss.svg"
[ -f "$run/checkpoints/step_00000004/model.safetensors" ] || fail "no final checkpoint"
[ "$(grep -c '"loss"' "$run/metrics.jsonl")" -eq 4 ] || fail "metrics.jsonl should have 4 step lines"
grep -q '"val_loss"' "$run/metrics.jsonl" || fail "no validation line"

# Resume (auto) to 6 steps: picks up at step 4.
out=$("$EAT" train recipes/transformer_tiny.toml "${small[@]}" --set train.steps=6)
echo "$out" | grep -q "resumed from .*step_00000004" || fail "did not resume from step 4"
[ "$(grep -c '"loss"' "$run/metrics.jsonl")" -eq 6 ] || fail "metrics.jsonl should have 6 step lines after resume"

json=$("$EAT" eval --checkpoint "$run" --json)
for key in loss ppl bpb tokens ppl_stderr; do echo "$json" | grep -q "\"$key\":" || fail "eval --json lacks $key: $json"; done
"$EAT" eval --checkpoint "$run" --max-tokens 100 | grep -q "perplexity" || fail "eval table"
# Generate: the text on stdout (any bytes, so compared as files), the throughput and state line on
# stderr; a seed fixes the text.
gen=("$EAT" generate --checkpoint "$run" --prompt "line 3 the" --max-new-tokens 24)
"${gen[@]}" --seed 3 --top-k 50 --top-p 0.9 > "$tmp/gen1.txt" 2> "$tmp/gen.err"
[ -s "$tmp/gen1.txt" ] || fail "generate printed nothing"
grep -Eq "^prompt 10 tokens at [0-9.]+ tokens/s \| generated [0-9]+ tokens at [0-9.]+ tokens/s.* \| decoding state [0-9]+ bytes$" \
  "$tmp/gen.err" || fail "generate stats line: $(cat "$tmp/gen.err")"
"${gen[@]}" --seed 3 --top-k 50 --top-p 0.9 > "$tmp/gen2.txt" 2> /dev/null
cmp -s "$tmp/gen1.txt" "$tmp/gen2.txt" || fail "generate: the same seed gave another text"
"${gen[@]}" --temperature 0 > "$tmp/greedy1.txt" 2> /dev/null
"${gen[@]}" --temperature 0 --seed 9 > "$tmp/greedy2.txt" 2> /dev/null
cmp -s "$tmp/greedy1.txt" "$tmp/greedy2.txt" || fail "generate: greedy is not deterministic"
if err=$("${gen[@]}" --top-p 1.5 2>&1); then fail "generate --top-p 1.5 accepted"; fi
[ "$err" = "eat: error: generate: --top-p must be in (0, 1], got 1.5" ] || fail "generate --top-p error: $err"
if err=$("$EAT" generate --checkpoint "$run" --prompt "" 2>&1); then fail "generate: empty prompt accepted"; fi
[ "$err" = "eat: error: generate: the prompt is empty; give the text to continue" ] || fail "generate: empty prompt error: $err"
if err=$("$EAT" generate --checkpoint "$tmp/nowhere" --prompt x 2>&1); then fail "generate: missing checkpoint accepted"; fi
echo "$err" | grep -q "nowhere" || fail "generate: missing checkpoint error: $err"

# Subword data: a SentencePiece model trained on the training split, the same bytes every time; a
# recipe whose vocabulary is too small is refused with both numbers; the checkpoint carries the
# model, and generate and eval use it.
sp=(data tokenize --text "$tmp/text.txt" --tokenizer sentencepiece --vocab 300)
"$EAT" "${sp[@]}" --out "$tmp/sp" | grep -q "tokenizer.model (sentencepiece, vocabulary 300)" || fail "data tokenize sentencepiece"
"$EAT" "${sp[@]}" --out "$tmp/sp2" > /dev/null
cmp -s "$tmp/sp/tokenizer.model" "$tmp/sp2/tokenizer.model" || fail "sentencepiece training is not deterministic"
"$EAT" data tokenize --text "$tmp/text.txt" --tokenizer sentencepiece --tokenizer-model "$tmp/sp/tokenizer.model" \
  --out "$tmp/sp3" > /dev/null
cmp -s "$tmp/sp/train.tok" "$tmp/sp3/train.tok" || fail "--tokenizer-model encodes differently"
sp_small=("${small[@]}" --set "run.out_dir=$tmp/sp_runs" --set "data.train=$tmp/sp/train.tok" --set "data.val=$tmp/sp/val.tok")
if err=$("$EAT" train recipes/transformer_tiny.toml "${sp_small[@]}" --set train.steps=2 2>&1); then
  fail "train: a vocabulary below the data's accepted"; fi
echo "$err" | grep -q "model.vocab_size = 257 is smaller than the vocabulary of $tmp/sp/train.tok (300, tokenizer sentencepiece)" ||
  fail "train: vocabulary error: $err"
"$EAT" train recipes/transformer_tiny.toml "${sp_small[@]}" --set train.steps=3 --set model.vocab_size=300 > /dev/null
sp_run="$tmp/sp_runs/transformer_tiny"
cmp -s "$sp_run/checkpoints/step_00000003/tokenizer.model" "$tmp/sp/tokenizer.model" || fail "checkpoint lacks the tokenizer model"
"$EAT" generate --checkpoint "$sp_run" --prompt "line 3 the" --max-new-tokens 8 > /dev/null 2> "$tmp/gen.err"
grep -q "^prompt [1-9] tokens" "$tmp/gen.err" || fail "generate did not encode the prompt with subwords: $(cat "$tmp/gen.err")"
"$EAT" eval --checkpoint "$sp_run" --json | grep -q '"bpb":' || fail "eval of a subword checkpoint"
"$EAT" info "$sp_run" | grep -q "^tokenizer    sentencepiece (tokenizer.model, hash " || fail "info lacks the tokenizer"
# Export: the transformer as LlamaForCausalLM with its tokenizer (transformers loading it: test_hf_export.sh).
"$EAT" export --checkpoint "$sp_run" --out "$tmp/hf" | grep -q "LlamaForCausalLM.from_pretrained" || fail "export"
for f in config.json model.safetensors tokenizer.model tokenizer_config.json; do [ -f "$tmp/hf/$f" ] || fail "export lacks $f"; done
grep -q '"model_type": "llama"' "$tmp/hf/config.json" || fail "export config.json: $(cat "$tmp/hf/config.json")"
if err=$("$EAT" eval --checkpoint "$sp_run" --data "$tmp/data/val.tok" 2>&1); then fail "eval: byte data on a subword model accepted"; fi
echo "$err" | grep -q "was written by another tokenizer (byte, vocabulary 257)" || fail "eval: tokenizer mismatch error: $err"

# Loss by position: log2 buckets in the JSON and the table, at twice the training window too.
json=$("$EAT" eval --checkpoint "$run" --by-position --seq-len 64 --max-tokens 640 --json)
echo "$json" | grep -q '"by_position":\[{"first":1,"last":1,"loss":[0-9.]*,"tokens":10},{"first":2,"last":3,' ||
  fail "eval --by-position --json: $json"
echo "$json" | grep -q '{"first":64,"last":64,' || fail "eval --by-position at --seq-len 64 lacks the last bucket: $json"
out=$("$EAT" eval --checkpoint "$run" --by-position --max-tokens 320)
echo "$out" | grep -Eq "^16-31 +[0-9.]+ +160$" || fail "eval --by-position table: $out"
"$EAT" info "$run" | grep -q "step         6 of 6" || fail "info"
"$EAT" info --families | grep -qx "transformer sp" || fail "info --families"

# A model with aux terms (MoH: the balance loss and each routed head's use): logged, and shown by info.
"$EAT" train recipes/moh_tiny.toml "${small[@]/model.transformer./model.moh.}" --set model.n_heads=4 \
  --set train.steps=2 --set train.global_batch=2 --set train.micro_batch=0 > /dev/null
grep -q '"aux_use_l0_h1"' "$tmp/runs/moh_tiny/metrics.jsonl" || fail "moh logs no head use"
info=$("$EAT" info "$tmp/runs/moh_tiny")
echo "$info" | grep -Eq "^aux_balance +[0-9.]" || fail "info shows no balance loss: $info"
echo "$info" | grep -Eq "^aux_use_l3_h3 +[0-9.]" || fail "info shows no head use: $info"

# MQAR: examples with a loss mask, a *_mqar recipe trains on them, eval --task mqar reports the
# answers' accuracy; unmasked data have no answers to score.
"$EAT" data prepare mqar --out "$tmp/mqar" --vocab 128 --seq-len 64 --train-examples 64 --val-examples 8 | grep -q "4 key-value pairs" ||
  fail "data prepare mqar"
[ -f "$tmp/mqar/train.mask" ] && [ -f "$tmp/mqar/val.mask" ] || fail "data prepare mqar wrote no masks"
"$EAT" train recipes/transformer_mqar.toml --set "run.out_dir=$tmp/runs" --set "data.train=$tmp/mqar/train.tok" \
  --set "data.val=$tmp/mqar/val.tok" --set data.seq_len=64 --set model.vocab_size=128 --set model.d_model=32 \
  --set model.transformer.mlp_hidden=64 --set train.steps=2 --set train.global_batch=4 --set train.micro_batch=2 \
  --set schedule.warmup=1 --set eval.every=2 --set checkpoint.every=2 | grep -q "val loss .* accuracy [0-9.]" || fail "mqar validation shows no accuracy"
json=$("$EAT" eval --checkpoint "$tmp/runs/transformer_mqar" --task mqar --json)
echo "$json" | grep -q '"tokens":32,' || fail "eval --task mqar should score the 8 x 4 answers: $json"
echo "$json" | grep -q '"accuracy":' || fail "eval --task mqar --json lacks accuracy: $json"
"$EAT" eval --checkpoint "$tmp/runs/transformer_mqar" --task mqar | grep -q "^accuracy .* over 32 answers" || fail "eval --task mqar table"
if err=$("$EAT" eval --checkpoint "$tmp/runs/transformer_mqar" --by-position 2>&1); then fail "eval --by-position accepted masked data"; fi
echo "$err" | grep -q "has a loss mask" || fail "eval --by-position on masked data: $err"
if err=$("$EAT" eval --checkpoint "$run" --task mqar 2>&1); then fail "eval --task mqar accepted data without a mask"; fi
echo "$err" | grep -q "has no mask beside it ($tmp/data/val.mask)" || fail "eval --task mqar without a mask: $err"

# Compare two runs: the table (markdown), JSON, and the plot naming both.
eat_path=$(cd "$(dirname "$EAT")" && pwd)/$(basename "$EAT")  # compare.svg lands in the current directory
out=$(cd "$tmp" && "$eat_path" compare runs/transformer_tiny runs/moh_tiny)
echo "$out" | grep -Eq "^\| transformer_tiny \| transformer \| [0-9]+ \| 1536 \| [0-9.]+ \| [0-9.]+ \|" || fail "compare table: $out"
echo "$out" | grep -Eq "^\| moh_tiny \| moh \| [0-9]+ \| 128 \|" || fail "compare table lacks the moh run: $out"
grep -q ">transformer_tiny</text>" "$tmp/compare.svg" && grep -q ">moh_tiny</text>" "$tmp/compare.svg" || fail "compare.svg"
json=$("$EAT" compare "$run" --json --out "$tmp/one.svg")
echo "$json" | grep -q '"tokens_seen": 1536' || fail "compare --json: $json"
[ -f "$tmp/one.svg" ] || fail "compare --out"
if err=$("$EAT" compare "$run" "$tmp/data" 2>&1); then fail "compare accepted a directory that is not a run"; fi
[ "$(echo "$err" | wc -l)" -eq 1 ] && echo "$err" | grep -q "$tmp/data is not a run directory" || fail "compare error: $err"

# A checkpoint whose weights hold an inf is refused by eval and generate, naming the weight.
cp -r "$run" "$tmp/inf_run"
st=$(ls -d "$tmp"/inf_run/checkpoints/step_*/ | tail -n 1)model.safetensors
header=$(od -An -t u8 -N 8 "$st" | tr -d ' ')
printf '\x00\x00\x80\x7f' | dd of="$st" bs=1 seek=$((8 + header)) conv=notrunc 2> /dev/null  # f32 inf
if err=$("$EAT" eval --checkpoint "$tmp/inf_run" 2>&1); then fail "eval accepted inf weights"; fi
echo "$err" | grep -q "holds inf or nan values" || fail "eval of inf weights: $err"

# A stop during set-up: the handlers are in place from the start of main (SigCgt shows SIGTERM,
# bit 15, caught), so SIGTERM then ends the run with exit 0 before its first step, saving nothing.
"$EAT" train recipes/transformer_tiny.toml "${small[@]}" --set run.name=early --set train.steps=2 > "$tmp/early.out" 2>&1 &
pid=$!
for _ in $(seq 1 1000); do
  mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
  [ -n "$mask" ] && (((16#$mask >> 14) & 1)) && break
  sleep 0.005
done
kill -TERM "$pid"
if wait "$pid"; then rc=0; else rc=$?; fi
[ "$rc" -eq 0 ] || fail "SIGTERM during set-up: exit $rc: $(cat "$tmp/early.out")"
grep -q "^stopped by signal before the first step; nothing was trained (the run stays at step 0)$" "$tmp/early.out" ||
  fail "SIGTERM during set-up: $(cat "$tmp/early.out")"
[ -z "$(ls "$tmp/runs/early/checkpoints" 2> /dev/null)" ] || fail "SIGTERM during set-up left a checkpoint"

# Errors: non-zero exit and one line naming the file, key or value.
printf '[run]\nname = "x"\n[modle]\n' > "$tmp/bad.toml"
if err=$("$EAT" train "$tmp/bad.toml" 2>&1); then fail "bad recipe accepted"; fi
[ "$(echo "$err" | wc -l)" -eq 1 ] || fail "bad recipe: expected one line, got: $err"
echo "$err" | grep -q "bad.toml" || fail "bad recipe error does not name the file: $err"
if err=$("$EAT" train recipes/transformer_tiny.toml "${small[@]}" --set train.stepz=3 2>&1); then fail "unknown key accepted"; fi
echo "$err" | grep -q "train.stepz: unknown key" || fail "unknown key error: $err"
if err=$("$EAT" train recipes/transformer_tiny.toml "${small[@]}" --set model.d_model=1048576 --set train.steps=2 2>&1); then
  fail "a model too large for memory was trained"; fi
[ "$(echo "$err" | wc -l)" -eq 1 ] && echo "$err" | grep -q "model.d_model = 1048576, .* need at least .* GiB per rank to train (parameters" ||
  fail "model too large for memory: $err"
if err=$("$EAT" eval --checkpoint "$tmp/nowhere" 2>&1); then fail "missing checkpoint accepted"; fi
echo "$err" | grep -q "nowhere" || fail "missing checkpoint error: $err"
head -c 100 "$tmp/data/train.tok" > "$tmp/cut.tok"
if err=$("$EAT" eval --checkpoint "$run" --data "$tmp/cut.tok" 2>&1); then fail "truncated token file accepted"; fi
echo "$err" | grep -q "truncated" || fail "truncated token file error: $err"

# The op table's benchmark: one row at its first bench shape; an unknown op is named.
out=$("$EAT" bench ops --op "attention window" --quick --threads 1)
echo "$out" | grep -Eq "^attention window +[0-9.]+ +[0-9.]+ +[0-9.]+%" || fail "bench ops prints no timing row: $out"
if err=$("$EAT" bench ops --op nosuch --quick 2>&1); then fail "unknown op accepted by bench ops"; fi
echo "$err" | grep -q 'no op named "nosuch"' || fail "unknown op error: $err"
# Whole training steps against a GEMM peak measured beside each, and a second run in the same
# rounds; nothing lands in run.out_dir.
out=$("$EAT" bench train recipes/transformer_tiny.toml "${small[@]}" --set run.out_dir="$tmp/bench_runs" --rounds 2 --warmup 1 \
  --threads 1 --against data.seq_len=64)
[ "$(echo "$out" | grep -Ec "^ +[12] +[0-9.]+ +[0-9]+ +[0-9.]+% +[0-9]+ +[0-9.]+% +[0-9.]+$")" -eq 2 ] ||
  fail "bench train prints no two rounds of both runs: $out"
echo "$out" | grep -Eq "^against / run tokens/s, round by round: median [0-9.]+ \([0-9.]+-[0-9.]+\)$" || fail "bench train ratio: $out"
[ ! -e "$tmp/bench_runs" ] || fail "bench train wrote into run.out_dir"
if err=$("$EAT" bench train recipes/transformer_tiny.toml "${small[@]}" --rounds 1 --against model.d_model=33 2>&1); then
  fail "bench train accepted a bad --against key"
fi
echo "$err" | grep -q "model.d_model" || fail "bench train bad key error: $err"
echo "cli: all checks passed"
