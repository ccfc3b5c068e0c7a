// Edges of softmax attention on CUDA: a sliding window of 0 (each query sees only itself) against
// the CPU, and empty keys refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"

using namespace eat;
using namespace eat::test;

namespace {

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_f64_vector()) m = std::max(m, std::isnan(v) ? HUGE_VAL : std::abs(v));
  return m;
}

}  // namespace

TEST_CASE("cuda attention: window 0, each query sees only its own key (out = v, dv = dO, dq = dk = 0)") {
  // With one key a row the probability is exactly 1: the output is v and dv is dO, both within the
  // suite's tolerance of the CPU. dq and dk are p (dP - dO . O) = 0 up to rounding (dP and the row
  // dot sum the same products in different orders), so they are bounded absolutely: a few units of
  // f32 rounding of an 8-term-norm dot product times the 1/sqrt(d) scale, with a wide margin.
  test::require_gpu();
  Generator gen(2240);
  const int64_t B = 2, T = 75, H = 3, d = 64, e = 48;
  AttentionOptions options;
  options.window_left = 0;
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    Tensor q = random_host({B, T, H, d}, gen), k = random_host({B, T, H, d}, gen), v = random_host({B, T, H, e}, gen);
    Tensor dout = random_host({B, T, H, e}, gen);
    std::vector<Tensor> cpu_in{rounded(q, dtype), rounded(k, dtype), rounded(v, dtype)};
    for (Tensor& t : cpu_in) t.requires_grad_();
    Tensor cpu_out = attention(cpu_in[0], cpu_in[1], cpu_in[2], options);
    cpu_out.backward(rounded(dout, dtype));

    poison_allocator_cache({{B, T, H, d}, {B, T, H, e}}, dtype, 4);
    std::vector<Tensor> dev_in{to_device(q, dtype), to_device(k, dtype), to_device(v, dtype)};
    for (Tensor& t : dev_in) t.requires_grad_();
    Tensor out = attention(dev_in[0], dev_in[1], dev_in[2], options);
    out.backward(to_device(dout, dtype));
    check_close(out, cpu_out, dtype, "out");
    check_close(out, rounded(v, dtype), dtype, "out against v");
    check_close(dev_in[2].grad(), cpu_in[2].grad(), dtype, "dv");
    const double bound = dtype == DType::bf16 ? 1e-3 : 1e-4;
    CHECK_MESSAGE(max_abs(dev_in[0].grad()) < bound, "dq: ", max_abs(dev_in[0].grad()));
    CHECK_MESSAGE(max_abs(dev_in[1].grad()) < bound, "dk: ", max_abs(dev_in[1].grad()));
  }
}

TEST_CASE("cuda attention: empty keys are refused, naming the op") {
  // Non-causal attention over k.size(1) == 0 once read T rows from the empty k and v; the op now
  // refuses it (framework/ops/attention.cpp, on every device). Causal attention over no keys was
  // already refused: the queries do not fit the keys.
  test::require_gpu();
  Generator gen(2241);
  for (DType dtype : {DType::f32, DType::bf16}) {
    Tensor q = to_device(random_host({1, 5, 2, 16}, gen), dtype);
    Tensor k = Tensor::empty({1, 0, 2, 16}, dtype, Device::cuda), v = Tensor::empty({1, 0, 2, 8}, dtype, Device::cuda);
    AttentionOptions non_causal;
    non_causal.causal = false;
    CHECK_THROWS_WITH_AS(attention(q, k, v, non_causal), doctest::Contains("attention"), Error);
    CHECK_THROWS_WITH_AS(attention(q, k, v), doctest::Contains("attention"), Error);
  }
}
