#!/usr/bin/env bash
# The data- and sequence-parallel parity of test_data_parallel.sh on GPUs: every registered family
# (`eat info --families`) trains 5 steps with train.device = "cuda" in one process and under
# mpirun on 2 GPUs (sp=1, and sp=2 for the families that support sequence parallelism; with 4 or
# more GPUs also np=4 and sp=2 x dp=2), one GPU per rank, gradients and states moved by NCCL; the
# losses agree within 1e-5 relative (parity_common.sh). Skipped (exit 77) unless `nvidia-smi -L`
# lists at least 2 GPUs.
# Usage: test_multi_gpu.sh path/to/eat   (from the repository root)
set -euo pipefail
EAT=$1
gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU ' || true)
if [ "${gpus:-0}" -lt 2 ]; then
  echo "multi-GPU parity skipped: ${gpus:-0} GPU(s) visible, needs 2"
  exit 77
fi
source "$(dirname "$0")/parity_common.sh"

every_family_parity "$gpus" --set train.device=cuda
echo "multi-GPU parity: all checks passed on $gpus GPUs"
