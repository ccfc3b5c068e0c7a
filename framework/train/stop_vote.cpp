#include "framework/train/stop_vote.h"

#include <atomic>
#include <csignal>

namespace eat {

namespace {

std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int) { g_stop_requested = true; }

}  // namespace

StopSignals::StopSignals() {
  g_stop_requested = false;
  old_int_ = std::signal(SIGINT, request_stop);
  old_term_ = std::signal(SIGTERM, request_stop);
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
}

bool stop_voted(Communicator& world) { return world.any(g_stop_requested); }

}  // namespace eat
