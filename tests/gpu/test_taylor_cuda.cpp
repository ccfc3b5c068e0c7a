// The CUDA Taylor linear attention (the chunked form) beyond the op table's comparisons with the
// CPU: bit-identical outputs and gradients from run to run, a prefix state longer than the
// chunk, and clear errors for the forms and widths it does not run.
#include <doctest/doctest.h>

#include <vector>

#include "base/error.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("cuda taylor: bit-identical outputs, final state and gradients from run to run") {
  test::require_gpu();
  Generator gen(301);
  const int64_t B = 2, T = 200, H = 3, f = 16, e = 64, Dp = taylor_state_rows(f);
  for (DType dtype : {DType::f32, DType::bf16})
    for (bool normalize : {true, false}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(normalize);
      Tensor q = to_device(random_rounded({B, T, H, f}, gen, dtype, 0.7), dtype);
      Tensor k = to_device(random_rounded({B, T, H, f}, gen, dtype, 0.7), dtype);
      Tensor v = to_device(random_rounded({B, T, H, e}, gen, dtype), dtype);
      Tensor dy = to_device(random_rounded({B, T, H, e}, gen, dtype), dtype);
      Tensor dfin = to_device(random_rounded({B, H, Dp, e + 1}, gen, DType::f32), DType::f32);  // states are f32
      // A prefix state as the model passes one: the final state of earlier tokens (f32).
      Tensor s0 = taylor_attention(k, k, v, Tensor(), {.impl = TaylorImpl::chunked}).second;
      REQUIRE(s0.dtype() == DType::f32);
      auto once = [&] {
        Tensor ql = q.detach().requires_grad_(), kl = k.detach().requires_grad_(), vl = v.detach().requires_grad_();
        Tensor sl = s0.detach().requires_grad_();
        auto [y, fin] = taylor_attention(ql, kl, vl, sl, {.impl = TaylorImpl::chunked, .normalize = normalize});
        add(sum(mul(y, dy)), sum(mul(fin, dfin))).backward();
        std::vector<double> all;
        for (const Tensor& t : {y, fin, ql.grad(), kl.grad(), vl.grad(), sl.grad()}) {
          std::vector<double> x = t.detach().to_f64_vector();
          all.insert(all.end(), x.begin(), x.end());
        }
        return all;
      };
      CHECK(once() == once());
    }
}

TEST_CASE("cuda taylor: the forms without a CUDA kernel and unsupported widths are refused with their names") {
  test::require_gpu();
  Tensor q = Tensor::zeros({1, 4, 1, 16}, DType::f32, Device::cuda), v = Tensor::zeros({1, 4, 1, 8}, DType::f32, Device::cuda);
  CHECK_THROWS_WITH_AS(taylor_attention(q, q, v, Tensor(), {.impl = TaylorImpl::parallel}),
                       doctest::Contains("the parallel form has no CUDA kernel"), Error);
  CHECK_THROWS_WITH_AS(taylor_attention(q, q, v, Tensor(), {.impl = TaylorImpl::recurrent}),
                       doctest::Contains("the recurrent form has no CUDA kernel"), Error);
  Tensor wide = Tensor::zeros({1, 4, 1, 32}, DType::f32, Device::cuda);
  CHECK_THROWS_WITH_AS(taylor_attention(wide, wide, v), doctest::Contains("feature dim f = 32"), Error);
  // bf16 inputs take the f32 state their own runs return, not a bf16 one.
  Tensor qb = q.to(DType::bf16), vb = v.to(DType::bf16);
  Tensor bf16_state = Tensor::zeros({1, 1, taylor_state_rows(16), 9}, DType::bf16, Device::cuda);
  CHECK_THROWS_WITH_AS(taylor_attention(qb, qb, vb, bf16_state), doctest::Contains("the states are f32"), Error);
}
