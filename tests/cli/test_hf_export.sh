#!/usr/bin/env bash
# An `eat export --format hf` directory loaded by Hugging Face transformers as LlamaForCausalLM with
# no custom code: its loss on the first validation window equals `eat eval`'s (f32, 1e-4
# relative), and its LlamaTokenizer round-trips text. Skipped (77) unless PyTorch and
# transformers are importable.
# Usage: test_hf_export.sh path/to/eat   (run from the repository root)
set -euo pipefail
EAT=$1
python3 -c "import torch, transformers, sentencepiece" 2> /dev/null || { echo "torch/transformers/sentencepiece not importable: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in $(seq 1 2000); do echo "line $((i % 17)) the king went up to the city of $((i % 5))."; done > "$tmp/text.txt"
"$EAT" data tokenize --text "$tmp/text.txt" --out "$tmp/data" --tokenizer sentencepiece --vocab 300 > /dev/null
"$EAT" train recipes/transformer_tiny.toml --set "run.out_dir=$tmp/runs" --set "data.train=$tmp/data/train.tok" \
  --set "data.val=$tmp/data/val.tok" --set model.d_model=32 --set model.n_heads=2 --set model.transformer.mlp_hidden=64 \
  --set model.vocab_size=300 --set data.seq_len=32 --set train.steps=3 --set schedule.warmup=1 --set checkpoint.every=3 \
  --set eval.every=3 > /dev/null
"$EAT" export --checkpoint "$tmp/runs/transformer_tiny" --out "$tmp/hf" > /dev/null
eat_loss=$("$EAT" eval --checkpoint "$tmp/runs/transformer_tiny" --max-tokens 32 --json |
  python3 -c "import json, sys; print(json.load(sys.stdin)['loss'])")
python3 - "$tmp/hf" "$tmp/data/val.tok" "$eat_loss" <<'PY' || fail "transformers disagrees with eat"
import sys, numpy as np, torch
from transformers import LlamaForCausalLM, LlamaTokenizer
hf_dir, val_path, eat_loss = sys.argv[1], sys.argv[2], float(sys.argv[3])
model = LlamaForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
raw = open(val_path, "rb").read()
ids = np.frombuffer(raw[64:], dtype=np.uint16).astype(np.int64)[:33]  # a 64-byte header, 2-byte ids
x = torch.tensor(ids[None, :32])
with torch.no_grad():
    logits = model(input_ids=x).logits[0]
loss = torch.nn.functional.cross_entropy(logits.double(), torch.tensor(ids[1:33])).item()
print(f"transformers loss {loss:.6f}, eat eval loss {eat_loss:.6f}")
assert abs(loss - eat_loss) <= 1e-4 * abs(eat_loss), (loss, eat_loss)
tok = LlamaTokenizer.from_pretrained(hf_dir)
text = "line 3 the king went up\n  to caf\u00e9"
assert tok.decode(tok.encode(text)) == text, tok.decode(tok.encode(text))
PY
echo "hf export: ok"
