// The CUDA gated_attention beyond the op table's comparisons with the CPU: the active lists over
// several 256-token compaction chunks and more query tiles than the table's shapes (a head with
// every gate 0, one with a single active query), bit-identical outputs and gradients from run to
// run, exact zeros where a gate is 0 (f32 and bf16), and the head widths it refuses.
#include <doctest/doctest.h>

#include <vector>

#include "base/error.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"
#include "gpu/op_parity.h"

using namespace eat;
using namespace eat::test;

namespace {

// Host gates [B, T, H] (f32): head 0 of batch 0 all 0, head 1 of batch 0 active at t = T / 2
// only, the rest drawn with every third (token, head) pair 0.
Tensor sparse_gates(Generator& gen, int64_t B, int64_t T, int64_t H) {
  std::vector<double> g = random_host({B, T, H}, gen).to_f64_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        double& x = g[static_cast<size_t>((b * T + t) * H + h)];
        if ((b == 0 && h == 0) || (b == 0 && h == 1 && t != T / 2) || (t * 5 + h) % 3 == 0) x = 0.0;
      }
  return Tensor::from_vector<double>(g, {B, T, H}).to(DType::f32);
}

std::vector<Tensor> host_inputs(Generator& gen, int64_t T, int64_t Tk, int64_t d, int64_t e) {
  const int64_t B = 2, H = 3;
  return {random_host({B, T, H, d}, gen), random_host({B, Tk, H, d}, gen), random_host({B, Tk, H, e}, gen),
          sparse_gates(gen, B, T, H)};
}

AttentionOptions with(int64_t window, int64_t offset) {
  AttentionOptions o;
  o.window_left = window;
  o.query_offset = offset;
  return o;
}

}  // namespace

TEST_CASE("cuda gated_attention: long sequences with empty and single-query heads match the CPU") {
  test::require_gpu();
  Generator gen(501);
  // 600 queries: three compaction chunks, many tiles; a window narrower than the gaps between
  // active rows; a later rank's queries against longer keys.
  struct Case {
    int64_t window, offset, keys;
  };
  for (const Case& c : std::vector<Case>{{-1, 0, 600}, {3, 0, 600}, {-1, 100, 750}}) {
    CAPTURE(c.window);
    CAPTURE(c.offset);
    const AttentionOptions o = with(c.window, c.offset);
    const op_cases::Call call = [o](const std::vector<Tensor>& in) {
      return gated_attention(in[0], in[1], in[2], in[3], o);
    };
    for (DType dtype : {DType::f32, DType::bf16})
      check_op_on_device(call, host_inputs(gen, 600, c.keys, 64, 40), dtype, tolerance(dtype), gen, "gated_attention");
  }
}

TEST_CASE("cuda gated_attention: bit-identical outputs and gradients from run to run, zeros where gates are 0") {
  test::require_gpu();
  Generator gen(502);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    std::vector<Tensor> in;
    for (const Tensor& h : host_inputs(gen, 300, 300, 128, 96)) in.push_back(to_device(h, dtype));
    const Tensor dy = to_device(random_rounded({2, 300, 3, 96}, gen, dtype), dtype);
    auto once = [&] {
      std::vector<Tensor> leaves;
      for (const Tensor& t : in) leaves.push_back(t.detach().requires_grad_());
      const Tensor y = gated_attention(leaves[0], leaves[1], leaves[2], leaves[3], with(40, 0));
      sum(mul(y, dy)).backward();
      std::vector<std::vector<double>> all{y.detach().to_f64_vector()};
      for (const Tensor& t : leaves) all.push_back(t.grad().to_f64_vector());
      return all;
    };
    const std::vector<std::vector<double>> first = once();
    CHECK(first == once());
    // y, dq (rows of d) and dgate are exactly 0 wherever the gate is.
    const std::vector<double> gates = in[3].to_f64_vector();
    const std::vector<double>&y = first[0], &dq = first[1], &dgates = first[4];
    for (size_t i = 0; i < gates.size(); ++i) {
      if (gates[i] != 0.0) continue;
      CHECK(dgates[i] == 0.0);
      for (size_t c = 0; c < 96; ++c) REQUIRE(y[i * 96 + c] == 0.0);
      for (size_t c = 0; c < 128; ++c) REQUIRE(dq[i * 128 + c] == 0.0);
    }
  }
}

TEST_CASE("cuda gated_attention: all gates 0 give y = 0 and no gradient") {
  test::require_gpu();
  Generator gen(503);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    std::vector<Tensor> leaves;
    for (const Tensor& h : host_inputs(gen, 70, 70, 32, 16)) leaves.push_back(to_device(h, dtype).requires_grad_());
    leaves[3] = Tensor::zeros({2, 70, 3}, dtype, Device::cuda).requires_grad_();
    const Tensor y = gated_attention(leaves[0], leaves[1], leaves[2], leaves[3]);
    sum(mul(y, to_device(random_rounded(y.shape(), gen, dtype), dtype))).backward();
    for (const Tensor& t : {y.detach(), leaves[0].grad(), leaves[1].grad(), leaves[2].grad(), leaves[3].grad()})
      for (double x : t.to_f64_vector()) REQUIRE(x == 0.0);
  }
}

TEST_CASE("cuda gated_attention: head widths over 128 are refused with the widths") {
  test::require_gpu();
  Generator gen(504);
  std::vector<Tensor> in;
  for (const Tensor& h : host_inputs(gen, 8, 8, 160, 32)) in.push_back(to_device(h, DType::f32));
  CHECK_THROWS_WITH_AS(gated_attention(in[0], in[1], in[2], in[3]),
                       doctest::Contains("gated_attention (CUDA): head widths up to 128, got d = 160, e = 32"), Error);
}
