// simple_rms_norm_gate beyond the op table's row (framework/op_cases/norms.cpp): the bits of the
// two ops it stands for, forward and backward, on the thread counts and with x's gradient added
// into a residual stream's sum so far (TransNormerLLM's SRMSNorm and output gate).
#include <omp.h>

#include "framework/ops.h"
#include "gradcheck.h"

using namespace eat;

TEST_CASE("simple_rms_norm_gate: the bits of mul(simple_rms_norm(x), gate), forward and every gradient") {
  // 300 rows of 200 in f32 (past the threads' threshold); x comes out of an op and is also the
  // residual of the projection after the gate, so its gradient is the sum of two and the norm's
  // backward adds into the residual's (autograd::gradient_so_far).
  Generator gen(41);
  const Tensor x0 = Tensor::randn({3, 100, 200}, gen, 2.0, DType::f32), u0 = Tensor::randn({3, 100, 200}, gen),
               g = Tensor::randn({3, 100, 200}, gen), w = Tensor::randn({200, 200}, gen, 0.1);
  const int threads_before = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    omp_set_num_threads(threads);
    std::vector<std::vector<double>> results[2];
    for (bool fused : {true, false}) {
      Tensor leaf = x0.clone().requires_grad_(), u = u0.clone().requires_grad_();
      const Tensor x = scale(leaf, 1.0);
      const Tensor y = fused ? simple_rms_norm_gate(x, u, 1e-5) : mul(simple_rms_norm(x, 1e-5), u);
      sum(mul(linear(y, w, Tensor(), x), g)).backward();
      results[fused ? 0 : 1] = {y.to_f64_vector(), leaf.grad().to_f64_vector(), u.grad().to_f64_vector()};
    }
    CHECK(results[0] == results[1]);
  }
  omp_set_num_threads(threads_before);
  CHECK_THROWS_WITH_AS(simple_rms_norm_gate(x0, Tensor::zeros({3, 100, 199}), 1e-5),
                       doctest::Contains("simple_rms_norm_gate"), Error);
}
