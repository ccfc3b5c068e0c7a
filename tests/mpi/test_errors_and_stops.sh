#!/usr/bin/env bash
# eat train under mpirun -np 2 when something goes wrong: a mistake in the recipe or the data is
# one line (rank 0's) and a non-zero exit, every rank leaving MPI normally (no MPI_ABORT report).
# Usage: test_errors_and_stops.sh path/to/eat   (from the repository root)
set -euo pipefail
EAT=$1
source "$(dirname "$0")/parity_common.sh"

# Runs eat train under mpirun -np 2 with the tiny settings and `$@`; expects it to fail with one
# "eat: error:" line containing the fragment $1, and no MPI_ABORT.
fails_once() {
  local fragment=$1
  shift
  local err
  if err=$("${MPIRUN[@]}" -np 2 "$EAT" train recipes/transformer_tiny.toml "${common[@]}" "$@" 2>&1); then
    fail "accepted under mpirun: $*"
  fi
  [ "$(echo "$err" | grep -c '^eat: error:')" -eq 1 ] || fail "expected one error line for $*, got: $err"
  echo "$err" | grep -q "^eat: error: .*$fragment" || fail "error for $* lacks '$fragment': $err"
  if echo "$err" | grep -qi "MPI_ABORT"; then fail "MPI_ABORT for $*: $err"; fi
}
fails_once "train.stepz: unknown key" --set train.stepz=3
fails_once "model.transformer.rope_theta: = 0: must be > 0" --set model.transformer.rope_theta=0.0
fails_once "train.global_batch = 3 does not split over 2 data-parallel ranks" --set train.global_batch=3
fails_once "$tmp/data/none.tok: cannot open" --set "data.train=$tmp/data/none.tok"
printf '[run]\nname = "x"\n[modle]\n' > "$tmp/bad.toml"
if err=$("${MPIRUN[@]}" -np 2 "$EAT" train "$tmp/bad.toml" 2>&1); then fail "a broken recipe accepted"; fi
[ "$(echo "$err" | grep -c "^eat: error: $tmp/bad.toml")" -eq 1 ] || fail "broken recipe: $err"

echo "errors and stops under mpirun: all checks passed"
