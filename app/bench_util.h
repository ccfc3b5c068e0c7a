#pragma once
// What every `eat bench` case shares: best-of timing and the result table.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "base/median.h"

namespace eat::cli {

// Best wall time in seconds of `reps` runs after one warm-up run.
inline double best_seconds(int reps, const std::function<void()>& fn) {
  fn();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

struct BenchRow {
  std::string name, shape;
  double seconds, gflop;
};

// name, shape, milliseconds, GFLOP/s and the fraction of the measured GEMM peak.
inline void print_row(const BenchRow& r, double peak) {
  double gflops = r.gflop / r.seconds;
  std::printf("%-34s %-26s %10.3f %10.1f %7.1f%%\n", r.name.c_str(), r.shape.c_str(), r.seconds * 1e3, gflops,
              100.0 * gflops / peak);
  std::fflush(stdout);
}

// The calls of one case of a length sweep (eat bench lightning, eat bench based), sampled in
// rounds: each sample runs `calls` calls back to back and keeps the mean; every call is kept too.
// Sweeps give every length's sample the same number of tokens, so each is exposed to a shared
// machine's slow spells for the same time (a best-of-N over many short calls would otherwise
// favour the short lengths).
struct CallTimes {
  double best = 1e30;                // seconds per call, best sample
  std::vector<double> call_seconds;  // every call of every sample

  void reset() {
    best = 1e30;
    call_seconds.clear();
  }
  void sample(int64_t calls, const std::function<void()>& call) {
    double total = 0;
    for (int64_t i = 0; i < calls; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      call();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      call_seconds.push_back(s);
      total += s;
    }
    best = std::min(best, total / static_cast<double>(calls));
  }
  double best_call() const { return *std::min_element(call_seconds.begin(), call_seconds.end()); }
  double median_call() const { return median(call_seconds); }
};

// Rounds over every length of several kernels (kernels[k]: one kernel's cases ordered by length,
// each a CallTimes with its T and a time(tokens) that samples calls until `tokens` tokens have gone
// through): a warm-up call each (the first touch of every buffer), then `rounds` rounds, each
// running every kernel's lengths in turn, every sample as many tokens as that kernel's longest
// length. Interleaving the kernels within each round exposes them to a shared machine's slow
// spells alike, so their ratios hold.
template <typename Case>
void sweep_lengths(std::vector<std::vector<Case>>& kernels, int rounds) {
  for (auto& cases : kernels)
    for (Case& c : cases) c.time(0);
  for (auto& cases : kernels)
    for (Case& c : cases) c.reset();
  for (int r = 0; r < rounds; ++r)
    for (auto& cases : kernels)
      for (Case& c : cases) c.time(cases.back().T);
}

}  // namespace eat::cli
