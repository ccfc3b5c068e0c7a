#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite. GPU tests report themselves skipped without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh -DEAT_TESTS=ON "$@"
# Two tests at a time with one thread each: two 2-thread OpenMP processes on 2 cores spin against
# each other and run several times slower. Tests that need more threads set them themselves.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --test-dir build --output-on-failure -j2
