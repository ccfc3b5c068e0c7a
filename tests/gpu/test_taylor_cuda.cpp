// The CUDA Taylor linear attention (the chunked form) beyond the op table's comparisons with the
// CPU: bit-identical outputs and gradients from run to run, a prefix state longer than the
// chunk, the smaller chunks of GPUs with less shared memory against the CPU kernel, and clear
// errors for the forms and widths it does not run and for a budget below every layout.
#include <doctest/doctest.h>

#include <vector>

#include "base/error.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"
#include "gpu/smem_cap.h"

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

namespace {

// The chunked attention at BASED's widths (f = 16, e = 64) from a prefix state on the device
// against the CPU f32 kernel on the same (rounded) inputs: y, the final state and every gradient;
// and the same for the sequence-parallel split, whose sums run the same kernel.
void check_against_cpu(DType dtype, bool normalize, Generator& gen) {
  CAPTURE(dtype_name(dtype));
  CAPTURE(normalize);
  const int64_t B = 2, T = 150, H = 3, f = 16, e = 64, Dp = taylor_state_rows(f);  // chunks of 64, 32, 16: a ragged last one
  // The prefix state as the model passes one: the state of 70 earlier tokens (f32).
  const Tensor s0 = taylor_state_sum(random_rounded({B, 70, H, f}, gen, dtype, 0.7), random_rounded({B, 70, H, e}, gen, dtype));
  const std::vector<Tensor> host = {random_rounded({B, T, H, f}, gen, dtype, 0.7), random_rounded({B, T, H, f}, gen, dtype, 0.7),
                                    random_rounded({B, T, H, e}, gen, dtype), s0,
                                    random_rounded({B, T, H, e}, gen, dtype), random_rounded({B, H, Dp, e + 1}, gen, DType::f32)};
  // split: the sequence-parallel split (the sums of a zero-start pass, then the state's readout),
  // whose loss has no final-state term.
  auto run = [&](Device device, bool split) {
    std::vector<Tensor> in;
    for (size_t i = 0; i < 4; ++i) {
      Tensor t = i == 3 || dtype == DType::f32 || device == Device::cpu ? host[i] : host[i].to(dtype);
      in.push_back((device == Device::cuda ? t.to(Device::cuda) : t).detach().requires_grad_());
    }
    Tensor dy = device == Device::cuda ? to_device(host[4], dtype) : host[4];
    Tensor dfin = device == Device::cuda ? host[5].to(Device::cuda) : host[5];
    const TaylorOptions o{.impl = TaylorImpl::chunked, .normalize = normalize};
    if (split) {
      Tensor y = taylor_state_readout(in[0], in[3], taylor_attention_sums(in[0], in[1], in[2], o), o);
      sum(mul(y, dy)).backward();
      return std::vector<Tensor>{y, in[0].grad(), in[1].grad(), in[2].grad(), in[3].grad()};
    }
    auto [y, fin] = taylor_attention(in[0], in[1], in[2], in[3], o);
    add(sum(mul(y, dy)), sum(mul(fin, dfin))).backward();
    return std::vector<Tensor>{y, fin, in[0].grad(), in[1].grad(), in[2].grad(), in[3].grad()};
  };
  const std::vector<Tensor> cpu = run(Device::cpu, false), gpu = run(Device::cuda, false);
  const char* names[] = {"y", "final state", "dq", "dk", "dv", "ds0"};
  for (size_t i = 0; i < cpu.size(); ++i) check_close(gpu[i], cpu[i], dtype, names[i]);
  // The split on the device against the CPU split (the same function as the whole attention).
  const std::vector<Tensor> cpu_split = run(Device::cpu, true), gpu_split = run(Device::cuda, true);
  const char* split_names[] = {"split y", "split dq", "split dk", "split dv", "split ds0"};
  for (size_t i = 0; i < cpu_split.size(); ++i) check_close(gpu_split[i], cpu_split[i], dtype, split_names[i]);
}

}  // namespace

TEST_CASE("cuda taylor: the smaller chunks of GPUs with less shared memory match the CPU kernel") {
  test::require_gpu();
  Generator gen(302);
  // 101,376 bytes (sm_86/sm_89) leave out the 64-token chunks (about 140 KB) for 32-token ones
  // (86 KB); 65,536 bytes leave 16-token ones (62 KB).
  for (int cap_bytes : {kSm86SmemBytes, 65536}) {
    CAPTURE(cap_bytes);
    const SmemCap cap(cap_bytes);
    for (DType dtype : {DType::f32, DType::bf16})
      for (bool normalize : {true, false}) check_against_cpu(dtype, normalize, gen);
  }
  for (DType dtype : {DType::f32, DType::bf16}) check_against_cpu(dtype, true, gen);  // the full budget's 64
}

TEST_CASE("cuda taylor: a shared-memory budget below the smallest chunk's layout fails with the bytes") {
  test::require_gpu();
  const SmemCap cap(32768);
  Tensor q = Tensor::zeros({1, 4, 1, 16}, DType::f32, Device::cuda), v = Tensor::zeros({1, 4, 1, 64}, DType::f32, Device::cuda);
  CHECK_THROWS_WITH_AS(taylor_attention(q, q, v), doctest::Contains("bytes of shared memory per block, at most 32768 are available"),
                       Error);
}
