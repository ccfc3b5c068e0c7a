#pragma once
// Where a training step's time goes, op by op: `eat train --profile`. Off by default, and then
// costs one flag test per op. When on, every op's kernel call is timed under the op's name,
// every autograd node's whole backward under "<op> backward" (the kernels it dispatches are not
// counted a second time), and communication outside backward nodes under "comm <label>". On CUDA each timed call waits for the compute stream, so the times are
// kernel times rather than launch times (and the run is slower than without --profile).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace eat::profiler {

void enable(bool on);
bool enabled();
void reset();

struct Entry {
  std::string name;
  double seconds = 0;
  int64_t calls = 0;
};
std::vector<Entry> entries();  // slowest first

// The table of entries, each with its share of `total_seconds` (the wall time they were taken in).
void print(std::FILE* out, double total_seconds, int64_t steps);

// True while an autograd node's backward is being timed on this thread: whatever runs inside is
// part of that node's time.
bool timing_backward();

// Adds time under `name` directly (communication, booked by the communicators as "comm <label>"),
// unless profiling is off or a backward node is being timed.
void record(const std::string& name, double seconds, int64_t calls = 1);

// Times one kernel call under `op`, unless profiling is off or an enclosing backward node is
// already being timed.
class OpScope {
 public:
  OpScope(const char* op, Device device) {
    if (enabled() && !timing_backward()) start(op, device);
  }
  ~OpScope() {
    if (op_) stop();
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  void start(const char* op, Device device);
  void stop();
  const char* op_ = nullptr;
  Device device_ = Device::cpu;
  int64_t start_ns_ = 0;
};

// Times one autograd node's backward as "<name> backward".
class BackwardScope {
 public:
  BackwardScope(const std::string& name, Device device);
  ~BackwardScope();
  BackwardScope(const BackwardScope&) = delete;
  BackwardScope& operator=(const BackwardScope&) = delete;

 private:
  bool active_ = false;
  std::string name_;
  Device device_ = Device::cpu;
  int64_t start_ns_ = 0;
};

}  // namespace eat::profiler
