#!/usr/bin/env bash
# Configures and builds eat (Release) into build/. Extra arguments go to cmake's configure step,
# e.g. scripts/build.sh -DEAT_NATIVE=OFF (a portable binary) or -DEAT_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"${EAT_BUILD_JOBS:-2}"
