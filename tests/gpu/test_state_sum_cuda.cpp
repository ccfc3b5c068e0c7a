// The CUDA state sum (S = sum_t lambda^(T-1-t) k_t^T v_t, the state LASP-2 gathers) against the
// CPU kernel: the state and both gradients, in f32 (relative error 1e-5) and bf16 (1e-2, against
// the CPU f32 kernel on the same bf16-rounded inputs). Odd lengths and lengths past one chunk,
// d != e, widths that need padding to the 16-wide fragment, lambda = 1 and strong decay. Device
// outputs start as NaN, so an element the kernel never writes fails the comparison. (The op
// decayed_state_sum through autograd: test_op_table_cuda.cpp.)
#include <doctest/doctest.h>

#include <vector>

#include "framework/dispatch.h"
#include "framework/ops.h"
#include "gpu/decay_cases.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"
#include "kernels/state_readout.h"
#include "runtime/cuda/stream.h"

using namespace eat;
using namespace eat::test;

namespace {

void check_state_sum(const HeadShape& n, const std::vector<double>& decay, DType dtype, Generator& gen) {
  CAPTURE(dtype_name(dtype));
  CAPTURE(n.T);
  CAPTURE(n.d);
  CAPTURE(n.e);
  CAPTURE(decay[0]);
  const Shape ks = n.qk(), vs = n.v(), ss = n.state();
  Tensor k = random_rounded(ks, gen, dtype, 0.5), v = random_rounded(vs, gen, dtype);
  Tensor dstate = random_rounded(ss, gen, dtype);
  Tensor state = Tensor::empty(ss), dk = Tensor::empty(ks), dv = Tensor::empty(vs);
  cpu::state_sum_forward<float>(n, decay.data(), k.data<float>(), v.data<float>(), state.data<float>());
  cpu::state_sum_backward<float>(n, decay.data(), k.data<float>(), v.data<float>(), dstate.data<float>(), dk.data<float>(),
                                 dv.data<float>());

  Tensor kd = to_device(k, dtype), vd = to_device(v, dtype), dsd = to_device(dstate, dtype);
  Tensor gstate = poisoned_device(ss, dtype), gdk = poisoned_device(ks, dtype), gdv = poisoned_device(vs, dtype);
  dispatch_cuda_floating("test", dtype, [&]<typename T>() {
    cuda::state_sum_forward<T>(n, decay.data(), kd.data<T>(), vd.data<T>(), gstate.data<T>());
    cuda::state_sum_backward<T>(n, decay.data(), kd.data<T>(), vd.data<T>(), dsd.data<T>(), gdk.data<T>(),
                                gdv.data<T>());
  });
  check_rel_error(gstate, state, dtype, "state");
  check_rel_error(gdk, dk, dtype, "dk");
  check_rel_error(gdv, dv, dtype, "dv");
}

}  // namespace

TEST_CASE("cuda state sum: the state and both gradients match the CPU kernel") {
  test::require_gpu();
  Generator gen(211);
  for (DType dtype : {DType::f32, DType::bf16})
    for (const auto& pool : kDecayPools)
      for (HeadShape n : {HeadShape{2, 77, 3, 64, 32}, HeadShape{1, 131, 4, 128, 96}, HeadShape{1, 5, 2, 24, 40},
                          HeadShape{2, 1, 1, 16, 8}})
        check_state_sum(n, decays(n.H, pool), dtype, gen);
}

TEST_CASE("cuda state sum: one gradient alone is written, the other pointer may be null") {
  test::require_gpu();
  Generator gen(212);
  const HeadShape n{1, 70, 2, 32, 48};
  const std::vector<double> decay{0.9, 1.0};
  const Shape ks = n.qk(), vs = n.v(), ss = n.state();
  Tensor k = random_host(ks, gen), v = random_host(vs, gen), dstate = random_host(ss, gen);
  Tensor dk = Tensor::empty(ks), dv = Tensor::empty(vs);
  cpu::state_sum_backward<float>(n, decay.data(), k.data<float>(), v.data<float>(), dstate.data<float>(), dk.data<float>(),
                                 dv.data<float>());
  Tensor kd = k.to(Device::cuda), vd = v.to(Device::cuda), dsd = dstate.to(Device::cuda);
  Tensor gdk = poisoned_device(ks, DType::f32), gdv = poisoned_device(vs, DType::f32);
  cuda::state_sum_backward<float>(n, decay.data(), kd.data<float>(), vd.data<float>(), dsd.data<float>(),
                                  gdk.data<float>(), nullptr);
  cuda::state_sum_backward<float>(n, decay.data(), kd.data<float>(), vd.data<float>(), dsd.data<float>(), nullptr,
                                  gdv.data<float>());
  check_rel_error(gdk, dk, DType::f32, "dk");
  check_rel_error(gdv, dv, DType::f32, "dv");
}

TEST_CASE("cuda state sum: unsupported head widths are rejected with the value") {
  test::require_gpu();
  Tensor k = Tensor::empty({1, 4, 1, 8}, DType::f32, Device::cuda), v = Tensor::empty({1, 4, 1, 200}, DType::f32, Device::cuda);
  CHECK_THROWS_WITH_AS(decayed_state_sum(k, v, {0.9}), doctest::Contains("e = 200"), Error);
}
