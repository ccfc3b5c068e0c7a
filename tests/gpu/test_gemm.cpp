// cuBLAS products against the CPU kernel: every transpose pair, accumulation, batches,
// odd sizes; outputs poisoned with NaN first. bf16 operands are rounded to bf16 before the CPU
// reference sees them, so both sides multiply the same numbers.
#include <doctest/doctest.h>

#include <cmath>

#include "framework/dispatch.h"
#include "base/random.h"
#include "framework/tensor.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"
#include "kernels/matmul.h"

using namespace eat;

namespace {

struct Sizes {
  int64_t m, n, k;
};

// One product C (+)= op(A) op(B) on both devices; returns the relative error.
double gemm_error(const Sizes& s, bool ta, bool tb, bool accumulate, DType dt, Generator& gen) {
  Tensor a = test::random_rounded(ta ? Shape{s.k, s.m} : Shape{s.m, s.k}, gen, dt);
  Tensor b = test::random_rounded(tb ? Shape{s.n, s.k} : Shape{s.k, s.n}, gen, dt);
  Tensor c0 = test::random_rounded({s.m, s.n}, gen, dt);
  Tensor ref = c0.clone();
  cpu::gemm<float>(a.data<float>(), b.data<float>(), ref.data<float>(), s.m, s.n, s.k, ta, tb, accumulate);
  Tensor ad = test::to_device(a, dt), bd = test::to_device(b, dt);
  Tensor cd = accumulate ? test::to_device(c0, dt) : test::poisoned_device({s.m, s.n}, dt);
  dispatch_cuda_floating("test", dt, [&]<typename T>() {
    cuda::gemm<T>(ad.data<T>(), bd.data<T>(), cd.data<T>(), s.m, s.n, s.k, ta, tb, accumulate);
  });
  return test::rel_error(cd, ref);
}

}  // namespace

TEST_CASE("cuda::gemm matches cpu::gemm for every transpose pair, overwriting and accumulating") {
  test::require_gpu();
  REQUIRE_FALSE(cuda::allow_tf32());  // f32 means f32 unless asked
  Generator gen(5);
  for (DType dt : {DType::f32, DType::bf16})
    for (Sizes s : {Sizes{65, 33, 127}, Sizes{1, 129, 7}, Sizes{130, 1, 64}})
      for (int flags = 0; flags < 8; ++flags) {
        const bool ta = flags & 1, tb = flags & 2, acc = flags & 4;
        CAPTURE(dtype_name(dt));
        CAPTURE(s.m);
        CAPTURE(s.n);
        CAPTURE(s.k);
        CAPTURE(flags);
        CHECK(gemm_error(s, ta, tb, acc, dt, gen) < test::tolerance(dt));
      }
}

TEST_CASE("allowing TF32 keeps f32 products close and switching it off restores f32 accuracy") {
  test::require_gpu();
  Generator gen(6);
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  const double err = gemm_error({65, 33, 127}, false, true, false, DType::f32, gen);
  cuda::set_allow_tf32(false);
  CHECK(err < 5e-3);  // TF32 keeps 10 mantissa bits
  CHECK(gemm_error({65, 33, 127}, false, true, false, DType::f32, gen) < 1e-5);
}

TEST_CASE("cuda::gemm_batched: shared and per-batch operands, a padded output stride left untouched") {
  test::require_gpu();
  Generator gen(8);
  const int64_t batch = 3, m = 65, n = 33, k = 127, pad = 7, sc = m * n + pad;
  for (DType dt : {DType::f32, DType::bf16})
    for (int flags = 0; flags < 8; ++flags) {
      const bool ta = flags & 1, tb = flags & 2, shared_b = flags & 4;
      CAPTURE(dtype_name(dt));
      CAPTURE(flags);
      Tensor a = test::random_rounded({batch, m * k}, gen, dt);
      Tensor b = test::random_rounded({shared_b ? 1 : batch, k * n}, gen, dt);
      const int64_t sb = shared_b ? 0 : k * n;
      Tensor ad = test::to_device(a, dt), bd = test::to_device(b, dt);
      Tensor cd = test::poisoned_device({batch, sc}, dt);
      dispatch_cuda_floating("test", dt, [&]<typename T>() {
        cuda::gemm_batched<T>(batch, ad.data<T>(), m * k, bd.data<T>(), sb, cd.data<T>(), sc, m, n, k, ta, tb, false);
      });
      std::vector<double> out = cd.to_f64_vector();
      for (int64_t i = 0; i < batch; ++i) {
        Tensor ref = Tensor::empty({m, n});
        cpu::gemm<float>(a.data<float>() + i * m * k, b.data<float>() + i * sb, ref.data<float>(), m, n, k, ta, tb,
                         false);
        Tensor got = Tensor::from_vector(std::vector<double>(out.begin() + i * sc, out.begin() + i * sc + m * n), {m, n});
        CHECK(test::rel_error(got, ref) < test::tolerance(dt));
        for (int64_t j = m * n; j < sc; ++j) CHECK(std::isnan(out[static_cast<size_t>(i * sc + j)]));
      }
    }
}

TEST_CASE("an empty inner dimension zeroes the output, or leaves it when accumulating") {
  test::require_gpu();
  for (bool acc : {false, true}) {
    Tensor c = test::poisoned_device({2, 5, 3}, DType::f32);
    if (acc) c.fill_(1.25);
    cuda::gemm_batched<float>(2, nullptr, 0, nullptr, 0, c.data<float>(), 15, 5, 3, 0, false, false, acc);
    for (double v : c.to_f64_vector()) CHECK(v == (acc ? 1.25 : 0.0));
  }
}

TEST_CASE("cuda::column_sums matches the CPU over one and many row chunks") {
  test::require_gpu();
  Generator gen(9);
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t rows : {0, 1, 255, 1000, 70001}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(rows);
      const int64_t cols = 33;
      Tensor x = test::random_rounded({rows, cols}, gen, dt);
      Tensor ref = Tensor::empty({cols});
      cpu::column_sums<float>(x.data<float>(), ref.data<float>(), rows, cols);
      Tensor xd = test::to_device(x, dt);
      Tensor out = test::poisoned_device({cols}, dt);
      dispatch_cuda_floating("test", dt,
                             [&]<typename T>() { cuda::column_sums<T>(xd.data<T>(), out.data<T>(), rows, cols); });
      CHECK(test::rel_error(out, ref) < test::tolerance(dt));
      if (rows == 0)
        for (double v : out.to_f64_vector()) CHECK(v == 0.0);
    }
}
