#pragma once
// Stopping on request: SIGINT/SIGTERM set a flag; the loop finishes its step, checkpoints and
// returns. The ranks vote after every step, so all of them stop at the same one.
#include "framework/comm/communicator.h"

namespace eat {

// Catches SIGINT and SIGTERM while it lives and restores the previous handlers after.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

// True on every rank when a signal reached any of them (a collective: every rank calls it).
bool stop_voted(Communicator& world);

}  // namespace eat
