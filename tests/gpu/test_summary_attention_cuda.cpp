// The CUDA summary_attention beyond the op table's comparisons with the CPU: bit-identical
// outputs and gradients from run to run (over several summary and query tiles), y = v exactly
// where a query sees no summary (f32 and bf16), and the head widths it refuses.
#include <doctest/doctest.h>

#include <vector>

#include "base/error.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"

using namespace eat;
using namespace eat::test;

namespace {

// q, k, v, k_sum, v_sum on the device: B = 2, H = 2, T tokens, C summaries, widths d and e.
std::vector<Tensor> device_inputs(Generator& gen, DType dtype, int64_t T, int64_t C, int64_t d, int64_t e) {
  const std::vector<Shape> shapes{{2, T, 2, d}, {2, T, 2, d}, {2, T, 2, e}, {2, C, 2, d}, {2, C, 2, e}};
  std::vector<Tensor> in;
  for (size_t i = 0; i < shapes.size(); ++i)
    in.push_back(to_device(random_rounded(shapes[i], gen, dtype, i == 2 || i == 4 ? 1.0 : 0.7), dtype));
  return in;
}

Tensor run(const std::vector<Tensor>& in, int64_t chunk) {
  return summary_attention(in[0], in[1], in[2], in[3], in[4], {.chunk = chunk});
}

}  // namespace

TEST_CASE("cuda summary_attention: bit-identical outputs and gradients from run to run") {
  test::require_gpu();
  Generator gen(401);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    // 300 tokens in chunks of 4: 75 summaries (three summary tiles), ten query tiles; d = 128.
    const std::vector<Tensor> in = device_inputs(gen, dtype, 300, 75, 128, 96);
    const Tensor dy = to_device(random_rounded({2, 300, 2, 96}, gen, dtype), dtype);
    auto once = [&] {
      std::vector<Tensor> leaves;
      for (const Tensor& t : in) leaves.push_back(t.detach().requires_grad_());
      const Tensor y = run(leaves, 4);
      sum(mul(y, dy)).backward();
      std::vector<double> all = y.detach().to_f64_vector();
      for (const Tensor& t : leaves) {
        std::vector<double> g = t.grad().to_f64_vector();
        all.insert(all.end(), g.begin(), g.end());
      }
      return all;
    };
    CHECK(once() == once());
  }
}

TEST_CASE("cuda summary_attention: queries that see no summary give y = v exactly") {
  test::require_gpu();
  Generator gen(402);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    const std::vector<Tensor> in = device_inputs(gen, dtype, 40, 1, 64, 64);
    CHECK(run(in, 64).to_f64_vector() == in[2].to_f64_vector());  // one chunk longer than the sequence
    const std::vector<Tensor> none = device_inputs(gen, dtype, 40, 0, 64, 64);
    CHECK(run(none, 4).to_f64_vector() == none[2].to_f64_vector());  // no summaries at all
  }
}

TEST_CASE("cuda summary_attention: head widths over 128 are refused with the widths") {
  test::require_gpu();
  Generator gen(403);
  const std::vector<Tensor> in = device_inputs(gen, DType::f32, 8, 2, 160, 32);
  CHECK_THROWS_WITH_AS(run(in, 4), doctest::Contains("head widths up to 128, got d = 160, e = 32"), Error);
}
