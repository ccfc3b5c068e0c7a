#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite. GPU tests report themselves skipped without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh -DEAT_TESTS=ON "$@"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ctest --test-dir build --output-on-failure -j2
