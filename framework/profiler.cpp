#include "framework/profiler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

#ifdef EAT_WITH_CUDA
#include "runtime/cuda/stream.h"
#endif

namespace eat::profiler {

namespace {

std::atomic<bool> g_enabled{false};
thread_local int t_backward_depth = 0;

struct Table {
  std::mutex mutex;
  std::map<std::string, Entry> entries;
};
Table& table() {
  static Table* t = new Table;  // never destroyed: ops may run during static destruction
  return *t;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// On CUDA the work is queued: wait for it, so the time is the kernels' and not the launches'.
void wait_for(Device device) {
#ifdef EAT_WITH_CUDA
  if (device == Device::cuda) cuda::sync_compute();
#else
  (void)device;
#endif
}

void add(const std::string& name, double seconds, int64_t calls) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  Entry& e = t.entries[name];
  e.name = name;
  e.seconds += seconds;
  e.calls += calls;
}

double seconds_since(int64_t start_ns) { return static_cast<double>(now_ns() - start_ns) * 1e-9; }

}  // namespace

void enable(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void reset() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.entries.clear();
}

std::vector<Entry> entries() {
  Table& t = table();
  std::vector<Entry> out;
  {
    std::lock_guard<std::mutex> lock(t.mutex);
    for (const auto& [name, e] : t.entries) out.push_back(e);
  }
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
  return out;
}

void print(std::FILE* out, double total_seconds, int64_t steps) {
  const std::vector<Entry> all = entries();
  double timed = 0;
  for (const Entry& e : all) timed += e.seconds;
  const double per_step = steps > 0 ? 1e3 / static_cast<double>(steps) : 0.0;
  std::fprintf(out, "profile over %lld steps (%.3f s): time per step by op\n", static_cast<long long>(steps),
               total_seconds);
  std::fprintf(out, "  %-40s %10s %8s %10s\n", "op", "ms/step", "share", "calls/step");
  for (const Entry& e : all)
    std::fprintf(out, "  %-40s %10.2f %7.1f%% %10.1f\n", e.name.c_str(), e.seconds * per_step,
                 total_seconds > 0 ? 100.0 * e.seconds / total_seconds : 0.0,
                 steps > 0 ? static_cast<double>(e.calls) / static_cast<double>(steps) : 0.0);
  const double rest = total_seconds - timed;
  std::fprintf(out, "  %-40s %10.2f %7.1f%%\n", "(outside ops: data, optimizer glue, ...)", rest * per_step,
               total_seconds > 0 ? 100.0 * rest / total_seconds : 0.0);
}

bool timing_backward() { return t_backward_depth > 0; }

void record(const std::string& name, double seconds, int64_t calls) {
  if (enabled() && !timing_backward()) add(name, seconds, calls);
}

void OpScope::start(const char* op, Device device) {
  op_ = op;
  device_ = device;
  wait_for(device);
  start_ns_ = now_ns();
}

void OpScope::stop() {
  wait_for(device_);
  add(op_, seconds_since(start_ns_), 1);
}

BackwardScope::BackwardScope(const std::string& name, Device device) {
  if (!enabled() || t_backward_depth > 0) return;
  active_ = true;
  name_ = name + " backward";
  device_ = device;
  ++t_backward_depth;
  wait_for(device);
  start_ns_ = now_ns();
}

BackwardScope::~BackwardScope() {
  if (!active_) return;
  wait_for(device_);
  add(name_, seconds_since(start_ns_), 1);
  --t_backward_depth;
}

}  // namespace eat::profiler
