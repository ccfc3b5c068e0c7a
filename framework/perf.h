#pragma once
// The machine's measured f32 GEMM rate: the denominator of every "fraction of peak" and MFU that
// eat prints, so they compare like with like on any machine.
#include <cstdint>

namespace eat {

// GFLOP/s of the best of `reps` n x n x n Eigen f32 GEMMs on the current OpenMP threads.
double measure_gemm_peak_gflops(int64_t n = 1024, int reps = 3);

}  // namespace eat
