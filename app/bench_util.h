#pragma once
// What every `eat bench` case shares: best-of timing and the result table.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

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

}  // namespace eat::cli
