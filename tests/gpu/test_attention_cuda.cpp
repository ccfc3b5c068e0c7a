// The CUDA flash attention kernels against the CPU tiled kernel: output, log-sum-exp and every
// gradient, in f32 (relative error 1e-5) and bf16 (1e-2, against the CPU f32 kernel on the same
// bf16-rounded inputs), over masks, odd lengths, head widths that are not multiples of the 16-wide
// fragment, a custom scale and queries that are a slice of longer keys. Device outputs start as
// NaN, so an element the kernel never writes fails the comparison.
#include <doctest/doctest.h>

#include <optional>

#include "framework/dispatch.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"
#include "kernels/cpu/attention_tiled.h"
#include "kernels/cuda/attention_flash.h"
#include "runtime/cuda/stream.h"

using namespace eat;
using namespace eat::test;

namespace {

struct Case {
  int64_t B, T, keys, H, d, e;  // keys: key rows (T when the same)
  bool causal = true;
  int64_t window = -1, offset = 0;
  std::optional<double> scale = {};
};

AttentionDims dims_of(const Case& c) {
  AttentionDims dims;
  dims.batch = c.B;
  dims.seq = c.T;
  dims.heads = c.H;
  dims.qk_dim = c.d;
  dims.v_dim = c.e;
  dims.causal = c.causal;
  dims.window_left = c.window;
  dims.keys = c.keys;
  dims.query_offset = c.offset;
  dims.scale = c.scale.value_or(1.0 / std::sqrt(static_cast<double>(c.d)));
  return dims;
}

struct Outputs {
  Tensor out, lse, dq, dk, dv;
};

void check_case(const Case& c, DType dtype, Generator& gen) {
  CAPTURE(dtype_name(dtype));
  CAPTURE(c.T);
  CAPTURE(c.keys);
  CAPTURE(c.d);
  CAPTURE(c.e);
  CAPTURE(c.causal);
  CAPTURE(c.window);
  CAPTURE(c.offset);
  const AttentionDims dims = dims_of(c);
  Tensor q = random_rounded({c.B, c.T, c.H, c.d}, gen, dtype);
  Tensor k = random_rounded({c.B, c.keys, c.H, c.d}, gen, dtype);
  Tensor v = random_rounded({c.B, c.keys, c.H, c.e}, gen, dtype);
  Tensor dout = random_rounded({c.B, c.T, c.H, c.e}, gen, dtype);

  Outputs ref{Tensor::empty(dout.shape()), Tensor::empty({c.B, c.H, c.T}), Tensor::empty(q.shape()),
              Tensor::empty(k.shape()), Tensor::empty(v.shape())};
  cpu::attention_tiled_forward<float>(q.data<float>(), k.data<float>(), v.data<float>(), ref.out.data<float>(),
                                      ref.lse.data<float>(), dims);
  cpu::attention_tiled_backward<float>(q.data<float>(), k.data<float>(), v.data<float>(), ref.out.data<float>(),
                                       ref.lse.data<float>(), dout.data<float>(), ref.dq.data<float>(),
                                       ref.dk.data<float>(), ref.dv.data<float>(), dims);

  Tensor qd = to_device(q, dtype), kd = to_device(k, dtype), vd = to_device(v, dtype), dod = to_device(dout, dtype);
  Outputs got{poisoned_device(dout.shape(), dtype), poisoned_device({c.B, c.H, c.T}, DType::f32),
              poisoned_device(q.shape(), dtype), poisoned_device(k.shape(), dtype), poisoned_device(v.shape(), dtype)};
  Tensor rowdot = poisoned_device({c.B, c.H, c.T}, DType::f32);
  dispatch_cuda_floating("test", dtype, [&]<typename T>() {
    cuda::attention_flash_forward<T>(qd.data<T>(), kd.data<T>(), vd.data<T>(), got.out.data<T>(),
                                     got.lse.data<float>(), dims);
    cuda::attention_flash_backward<T>(qd.data<T>(), kd.data<T>(), vd.data<T>(), got.out.data<T>(),
                                      got.lse.data<float>(), dod.data<T>(), got.dq.data<T>(), got.dk.data<T>(),
                                      got.dv.data<T>(), rowdot.data<float>(), dims);
  });
  check_rel_error(got.out, ref.out, dtype, "out");
  check_rel_error(got.lse, ref.lse, dtype, "lse");  // f32, at the tolerance of the case's dtype
  check_rel_error(got.dq, ref.dq, dtype, "dq");
  check_rel_error(got.dk, ref.dk, dtype, "dk");
  check_rel_error(got.dv, ref.dv, dtype, "dv");
}

}  // namespace

TEST_CASE("cuda flash attention: forward, log-sum-exp and gradients match the CPU tiled kernel") {
  test::require_gpu();
  Generator gen(101);
  for (DType dtype : {DType::f32, DType::bf16}) {
    // Lengths that are not multiples of any tile; head widths 128, 64 and ones that need padding.
    // (No single-key rows everywhere, as with T = 1 or window 0: their dq and dk are exactly zero
    // and a relative error against zero measures only rounding noise.)
    for (Case shape : {Case{2, 77, 77, 3, 64, 32}, Case{1, 130, 130, 2, 128, 128}, Case{2, 33, 33, 2, 40, 24},
                       Case{1, 3, 3, 1, 8, 8}}) {
      Case c = shape;
      c.causal = false;
      check_case(c, dtype, gen);
      c.causal = true;
      for (int64_t window : {int64_t{-1}, int64_t{1}, int64_t{5}, int64_t{64}}) {
        c.window = window;
        check_case(c, dtype, gen);
      }
      c.window = -1;
      c.scale = 0.3;
      check_case(c, dtype, gen);
    }
  }
}

TEST_CASE("cuda flash attention: queries as a slice of longer keys (query_offset), with and without masks") {
  test::require_gpu();
  Generator gen(102);
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t offset : {int64_t{0}, int64_t{70}, int64_t{100}})
      for (int64_t window : {int64_t{-1}, int64_t{9}, int64_t{80}}) {
        Case c{2, 50, 150, 2, 64, 48};
        c.offset = offset;
        c.window = window;
        check_case(c, dtype, gen);
      }
  // Non-causal cross attention: every query sees every one of the longer keys.
  for (DType dtype : {DType::f32, DType::bf16}) {
    Case c{1, 45, 100, 3, 32, 64};
    c.causal = false;
    check_case(c, dtype, gen);
  }
}

TEST_CASE("cuda flash attention: bit-identical gradients from run to run") {
  test::require_gpu();
  Generator gen(104);
  Case c{2, 200, 200, 4, 64, 64};
  const AttentionDims dims = dims_of(c);
  for (DType dtype : {DType::f32, DType::bf16}) {
    Tensor q = to_device(random_rounded({c.B, c.T, c.H, c.d}, gen, dtype), dtype);
    Tensor k = to_device(random_rounded({c.B, c.T, c.H, c.d}, gen, dtype), dtype);
    Tensor v = to_device(random_rounded({c.B, c.T, c.H, c.e}, gen, dtype), dtype);
    Tensor dout = to_device(random_rounded({c.B, c.T, c.H, c.e}, gen, dtype), dtype);
    auto grads = [&] {
      Tensor out = Tensor::empty(v.shape(), dtype, Device::cuda), lse = Tensor::empty({c.B, c.H, c.T}, DType::f32, Device::cuda);
      Tensor dq = Tensor::empty(q.shape(), dtype, Device::cuda), dk = Tensor::empty(k.shape(), dtype, Device::cuda),
             dv = Tensor::empty(v.shape(), dtype, Device::cuda), rowdot = Tensor::empty({c.B, c.H, c.T}, DType::f32, Device::cuda);
      dispatch_cuda_floating("test", dtype, [&]<typename T>() {
        cuda::attention_flash_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), lse.data<float>(), dims);
        cuda::attention_flash_backward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), lse.data<float>(),
                                          dout.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>(),
                                          rowdot.data<float>(), dims);
      });
      std::vector<double> all = out.to_f64_vector();
      for (const Tensor* t : {&dq, &dk, &dv}) {
        std::vector<double> x = t->to_f64_vector();
        all.insert(all.end(), x.begin(), x.end());
      }
      return all;
    };
    std::vector<double> a = grads(), b = grads();
    CHECK(a == b);
  }
}

TEST_CASE("cuda flash attention: unsupported head widths are rejected with the value") {
  test::require_gpu();
  Tensor q = Tensor::empty({1, 4, 1, 192}, DType::f32, Device::cuda), v = Tensor::empty({1, 4, 1, 8}, DType::f32, Device::cuda);
  CHECK_THROWS_WITH_AS(attention(q, q, v), doctest::Contains("d = 192"), Error);
}
