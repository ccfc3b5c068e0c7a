#include "framework/comm/comm_stats.h"

#include <chrono>

#include "framework/profiler.h"

namespace eat {

namespace {

std::string& label_in_scope() {
  static std::string label = "other";
  return label;
}

std::map<std::string, CommCount>& counts() {
  static std::map<std::string, CommCount> c;
  return c;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

CommLabel::CommLabel(std::string label) : previous_(std::move(label_in_scope())) { label_in_scope() = std::move(label); }
CommLabel::~CommLabel() { label_in_scope() = std::move(previous_); }

const std::string& current_comm_label() { return label_in_scope(); }

std::map<std::string, CommCount> comm_counts() { return counts(); }

CommCount comm_total() {
  CommCount total;
  for (const auto& [label, c] : counts()) {
    total.bytes += c.bytes;
    total.calls += c.calls;
    total.seconds += c.seconds;
  }
  return total;
}

void reset_comm_counts() { counts().clear(); }

CommTimer::CommTimer(int64_t bytes_sent, bool new_call)
    : label_(label_in_scope()), start_(now_seconds()), new_call_(new_call) {
  CommCount& c = counts()[label_];
  c.bytes += bytes_sent;
  c.calls += new_call ? 1 : 0;
}

CommTimer::~CommTimer() {
  const double seconds = now_seconds() - start_;
  counts()[label_].seconds += seconds;
  if (profiler::enabled()) profiler::record("comm " + label_, seconds, new_call_ ? 1 : 0);
}

}  // namespace eat
