// The CUDA flash attention kernels against the CPU tiled kernel: output, log-sum-exp and every
// gradient, in f32 (relative error 1e-5) and bf16 (1e-2, against the CPU f32 kernel on the same
// bf16-rounded inputs), over masks, odd lengths, head widths that are not multiples of the 16-wide
// fragment, a custom scale and queries that are a slice of longer keys. Device outputs start as
// NaN, so an element the kernel never writes fails the comparison.
#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>

#include "framework/dispatch.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"
#include "gpu/smem_cap.h"
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

struct Run {
  Outputs got, ref;  // the device's and the CPU's
};

// The case in a failure message (INFO in the scope of the checks).
std::string describe(const Case& c, DType dtype) {
  std::ostringstream os;
  os << dtype_name(dtype) << " B " << c.B << " T " << c.T << " keys " << c.keys << " H " << c.H << " d " << c.d
     << " e " << c.e << " causal " << c.causal << " window " << c.window << " offset " << c.offset;
  return os.str();
}

// Runs case c on the device and on the CPU, on the same dtype-rounded random inputs.
Run run_case(const Case& c, DType dtype, Generator& gen) {
  const AttentionDims dims = dims_of(c);
  Tensor q = random_rounded({c.B, c.T, c.H, c.d}, gen, dtype);
  Tensor k = random_rounded({c.B, c.keys, c.H, c.d}, gen, dtype);
  Tensor v = random_rounded({c.B, c.keys, c.H, c.e}, gen, dtype);
  Tensor dout = random_rounded({c.B, c.T, c.H, c.e}, gen, dtype);

  Outputs ref{Tensor::empty(dout.shape()), Tensor::empty({c.B, c.H, c.T}), Tensor::empty(q.shape()),
              Tensor::empty(k.shape()), Tensor::empty(v.shape())};
  cpu::attention_tiled_forward<float>(q.data<float>(), k.data<float>(), v.data<float>(), ref.out.data<float>(),
                                      ref.lse.data<float>(), dims);
  // The backward's rowdot (dO . O) reads the output the forward stored: in bf16 that is the output
  // rounded to bf16, so the reference gets it rounded the same way. With one to three keys per row
  // dq and dk are small differences of nearly equal terms, and the f32 output's rowdot alone moves
  // them past the tolerance (FlashAttention-2's backward does the same; it is not a kernel error).
  const Tensor stored_out = rounded(ref.out, dtype);
  cpu::attention_tiled_backward<float>(q.data<float>(), k.data<float>(), v.data<float>(), stored_out.data<float>(),
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
  cuda::sync_compute();
  return {got, ref};
}

void check_case(const Case& c, DType dtype, Generator& gen) {
  INFO(describe(c, dtype));
  const Run run = run_case(c, dtype, gen);
  check_rel_error(run.got.out, run.ref.out, dtype, "out");
  check_rel_error(run.got.lse, run.ref.lse, dtype, "lse");  // f32, at the tolerance of the case's dtype
  check_rel_error(run.got.dq, run.ref.dq, dtype, "dq");
  check_rel_error(run.got.dk, run.ref.dk, dtype, "dk");
  check_rel_error(run.got.dv, run.ref.dv, dtype, "dv");
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

TEST_CASE("cuda flash attention: windows of 2^31 keys and more are full causal attention, as on the CPU") {
  test::require_gpu();
  Generator gen(105);
  // INT_MAX overflowed the key pass's band arithmetic (dK and dV lost), 2^32 wrapped to window 0.
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t window : {int64_t{INT_MAX}, int64_t{1} << 31, int64_t{1} << 32})
      for (Case c : {Case{2, 77, 77, 3, 64, 32}, Case{2, 50, 150, 2, 64, 48}}) {
        c.window = window;
        c.offset = c.keys - c.T;
        check_case(c, dtype, gen);
      }
}

TEST_CASE("cuda flash attention: window 0, each query sees only its own key") {
  test::require_gpu();
  Generator gen(106);
  for (DType dtype : {DType::f32, DType::bf16})
    for (Case c : {Case{2, 77, 77, 3, 64, 32}, Case{1, 40, 90, 2, 40, 24}}) {
      c.window = 0;
      c.offset = c.keys - c.T;
      INFO(describe(c, dtype));
  const Run run = run_case(c, dtype, gen);
      check_rel_error(run.got.out, run.ref.out, dtype, "out");  // the query's own value row
      check_rel_error(run.got.lse, run.ref.lse, dtype, "lse");
      check_rel_error(run.got.dv, run.ref.dv, dtype, "dv");
      // With one key per row the probabilities are 1 whatever the scores, so dq and dk are exactly
      // zero; the kernel's dS = dO . v - dO . O is the difference of one sum taken in two orders,
      // about 1e-6 with these unit-scale inputs. Keys seen by a query they should not be would put
      // O(0.1) there.
      for (const Tensor* grad : {&run.got.dq, &run.got.dk}) {
        const std::vector<double> values = grad->to_f64_vector();
        double largest = 0;
        for (double x : values) largest = std::max(largest, std::abs(x));  // NaN (unwritten) fails below
        CHECK_MESSAGE((largest <= 1e-4 && std::none_of(values.begin(), values.end(), [](double x) { return std::isnan(x); })),
                      "dq/dk of window 0 (", dtype_name(dtype), "): largest |x| = ", largest, ", want exactly 0 up to rounding");
      }
    }
}

TEST_CASE("cuda flash attention: keys = 0 under queries is refused before any kernel reads them") {
  test::require_gpu();
  for (DType dtype : {DType::f32, DType::bf16}) {
    Tensor q = Tensor::zeros({1, 4, 2, 8}, dtype, Device::cuda), k = Tensor::zeros({1, 0, 2, 8}, dtype, Device::cuda),
           v = Tensor::zeros({1, 0, 2, 8}, dtype, Device::cuda);
    AttentionOptions full;
    full.causal = false;
    CHECK_THROWS_WITH_AS(attention(q, k, v, full), doctest::Contains("k [1, 0, 2, 8] holds no keys for the 4 queries"),
                         Error);
  }
}

TEST_CASE("cuda flash attention: more query rows than one sweep of the rowdot grid") {
  test::require_gpu();
  Generator gen(107);
  // B * H * T = 24,000 rows: the rowdot kernel's capped grid covers 16,384 rows a sweep, so the
  // rows past them are reached only by its grid-stride loop (unwritten ones would stay NaN).
  Case c{2, 3000, 3000, 4, 16, 16};
  c.window = 64;  // rows of the length the other cases check
  for (DType dtype : {DType::f32, DType::bf16}) check_case(c, dtype, gen);
}

TEST_CASE("cuda flash attention: the smaller tiles of a GPU with 101,376 bytes of shared memory (sm_86/sm_89)") {
  test::require_gpu();
  Generator gen(108);
  // Under this cap the default tiles do not fit from head width 80 in bf16 (both backward passes;
  // the forward from 112) and 112 in f32 (the key pass): those kernels run their CompactTiles.
  const SmemCap cap(kSm86SmemBytes);
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (Case shape : {Case{2, 77, 77, 2, 128, 128}, Case{1, 130, 130, 2, 80, 96}, Case{2, 33, 33, 3, 112, 72}}) {
      Case c = shape;
      c.causal = false;
      check_case(c, dtype, gen);
      c.causal = true;
      for (int64_t window : {int64_t{-1}, int64_t{5}, int64_t{64}}) {
        c.window = window;
        check_case(c, dtype, gen);
      }
    }
    for (int64_t offset : {int64_t{70}, int64_t{100}}) {  // queries as a slice of longer keys
      Case c{2, 50, 150, 2, 128, 128};
      c.offset = offset;
      c.window = offset == 70 ? -1 : 9;
      check_case(c, dtype, gen);
    }
  }
}

TEST_CASE("cuda flash attention: a shared-memory budget below even the smaller tiles fails with the bytes") {
  test::require_gpu();
  const SmemCap cap(32768);
  Tensor q = Tensor::zeros({1, 4, 1, 128}, DType::bf16, Device::cuda);
  CHECK_THROWS_WITH_AS(attention(q, q, q), doctest::Contains("bytes of shared memory per block, at most 32768 are available"),
                       Error);
}
