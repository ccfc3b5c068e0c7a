#include "framework/train/stop_vote.h"

#include <atomic>
#include <csignal>

namespace eat {

namespace {

std::atomic<bool> g_stop_requested{false};
std::atomic<bool> g_caught_early{false};
extern "C" void request_stop(int) { g_stop_requested = true; }

}  // namespace

void catch_stop_signals_early() {
  g_caught_early = true;
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) std::signal(sig, request_stop);
}

StopSignals::StopSignals() {
  if (!g_caught_early) g_stop_requested = false;
  old_int_ = std::signal(SIGINT, request_stop);
  old_term_ = std::signal(SIGTERM, request_stop);
  old_usr1_ = std::signal(SIGUSR1, request_stop);
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
  std::signal(SIGUSR1, old_usr1_);
}

bool stop_voted(Communicator& world) { return world.any(g_stop_requested); }

}  // namespace eat
