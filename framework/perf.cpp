#include "framework/perf.h"

#include <algorithm>
#include <chrono>

#include "base/random.h"
#include "framework/tensor.h"
#include "kernels/matmul.h"

namespace eat {

double measure_gemm_peak_gflops(int64_t n, int reps) {
  Generator gen(1);
  Tensor a = Tensor::randn({n, n}, gen), b = Tensor::randn({n, n}, gen), c = Tensor::empty({n, n});
  auto run = [&] { cpu::gemm<float>(a.data<float>(), b.data<float>(), c.data<float>(), n, n, n, false, false, false); };
  run();  // warm-up: page faults, thread start
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * static_cast<double>(n) * n * n / best / 1e9;
}

}  // namespace eat
