#pragma once
// Stopping on request: SIGINT, SIGTERM or SIGUSR1 set a flag; the loop finishes its step,
// checkpoints and returns. The ranks vote after every step, so all of them stop at the same one.
// SIGUSR1 is what mpirun forwards to every rank without ending the job (scripts/mpi_train.sh turns
// a Ctrl-C or SIGTERM into it); SIGINT and SIGTERM sent to mpirun make it kill the ranks instead.
#include "framework/comm/communicator.h"

namespace eat {

// Catches the three for the rest of the process, a signal from now on counting as a stop
// request for the run that follows: `eat train` calls it first thing, so that a signal during its
// set-up (MPI start, reading the data, building the model) stops the run before its first step
// instead of killing the process.
void catch_stop_signals_early();

// Catches the three while it lives and restores the previous handlers after. A request
// from before it was made counts only after catch_stop_signals_early (otherwise a run in the same
// process, a test's, starts without one).
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
  void (*old_usr1_)(int);
};

// True on every rank when a signal reached any of them (a collective: every rank calls it).
bool stop_voted(Communicator& world);

}  // namespace eat
