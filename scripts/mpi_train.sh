#!/usr/bin/env bash
# Launches eat train under mpirun so that stopping it keeps the work, as with one process: the
# first Ctrl-C, SIGTERM or SIGHUP to this script makes every rank finish its step, rank 0 save
# it, and the job exit 0 (a second one ends the job at once).
# Usage: scripts/mpi_train.sh [MPIRUN OPTIONS...] build/eat train RECIPE.toml [OPTIONS...]
#   e.g. scripts/mpi_train.sh -np 4 build/eat train recipes/transformer_tiny.toml
# Why: mpirun answers SIGINT and SIGTERM by killing the ranks about a second later (Open MPI's
# odls_base_sigkill_timeout), whatever they are doing, and exits 1; it forwards SIGUSR1 to every
# rank and keeps running, and eat train stops on SIGUSR1 as on SIGINT. So mpirun runs in a session
# of its own, out of reach of the terminal's Ctrl-C, and this script turns a stop into SIGUSR1.
set -uo pipefail
# Not a process group leader (a background job of a script), so setsid execs mpirun in place.
setsid mpirun "$@" < /dev/null &
launcher=$!
stops=0
stop() {
  stops=$((stops + 1))
  if [ "$stops" -eq 1 ]; then
    echo "stopping: every rank finishes its step, then the step is saved (stop again to end the job at once)" >&2
    kill -USR1 "$launcher" 2> /dev/null
  else
    kill -TERM "$launcher" 2> /dev/null
  fi
}
trap stop INT TERM HUP
while :; do
  wait "$launcher"
  status=$?
  if [ "$status" -gt 128 ]; then  # a trapped signal cuts the wait short while mpirun runs on
    kill -0 "$launcher" 2> /dev/null && continue
    wait "$launcher" 2> /dev/null
    again=$?
    [ "$again" -ne 127 ] && status=$again
  fi
  exit "$status"
done
