#pragma once
// When a loop is worth spreading over OpenMP threads. A parallel region wakes every thread and
// ends in a barrier: a few microseconds when threads have cores to themselves, far more when
// they compete (two 2-thread processes on 2 cores made tiny-op gradient checks 200x slower).
// Below kParallelMinWork scalar operations a loop runs on the calling thread; results do not
// change, since every kernel's reduction order is fixed independently of the thread count.
#include <cstdint>

namespace eat::cpu {

constexpr int64_t kParallelMinWork = int64_t{1} << 15;

inline bool parallel_worth(int64_t work) { return work >= kParallelMinWork; }

}  // namespace eat::cpu
