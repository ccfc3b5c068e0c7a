#!/usr/bin/env bash
# eat train under mpirun -np 2 when something goes wrong: a mistake in the recipe or the data is
# one line (rank 0's) and a non-zero exit, every rank leaving MPI normally (no MPI_ABORT report);
# Ctrl-C (SIGINT) or SIGTERM to the documented launcher, scripts/mpi_train.sh, in the middle of a
# step longer than mpirun's one-second grace before SIGKILL finishes the
# step on every rank, saves it and exits 0.
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

# A step longer than mpirun's grace: d_model 256 on 32 sequences of 512 tokens, one thread per
# rank, about 1.5 s on a 2-core Xeon (8 sequences took 0.5 s there once the CPU kernels got
# faster, and the signal landed after step 2 had ended).
stop_case() {  # signal
  local sig=$1 name=stop_$1
  # A background job of a script starts with SIGINT ignored; a terminal's Ctrl-C would reach it.
  env --default-signal=INT scripts/mpi_train.sh "${MPIRUN[@]:1}" -np 2 "$EAT" train recipes/transformer_tiny.toml \
    "${common[@]}" --set "run.name=$name" --set model.d_model=256 --set data.seq_len=512 --set train.global_batch=32 \
    --set train.steps=1000 --set log.every=1 --set eval.every=0 --set checkpoint.every=0 > "$tmp/$name.out" 2>&1 &
  local pid=$! rc
  until grep -q "^step 1/1000" "$tmp/$name.out"; do
    kill -0 "$pid" 2> /dev/null || fail "$name: the run ended early: $(cat "$tmp/$name.out")"
    sleep 0.05
  done
  sleep 0.5
  kill "-$sig" "$pid"  # half a second into step 2
  if wait "$pid"; then rc=0; else rc=$?; fi
  [ "$rc" -eq 0 ] || fail "$name: exit $rc: $(cat "$tmp/$name.out")"
  grep -q "^stopped by signal at step 2; checkpoint $tmp/runs/$name/checkpoints/step_00000002$" "$tmp/$name.out" ||
    fail "$name: $(cat "$tmp/$name.out")"
  [ -f "$tmp/runs/$name/checkpoints/step_00000002/state.json" ] || fail "$name: no checkpoint of step 2"
}
stop_case INT
stop_case TERM

echo "errors and stops under mpirun: all checks passed"
