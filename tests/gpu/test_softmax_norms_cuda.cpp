// CUDA row-wise kernels (softmax, RMSNorm, SimpleRMSNorm, L2 normalisation) against their CPU
// kernels at kernel level, with NaN-poisoned outputs and statistics (the Tensor-level ops:
// test_op_table_cuda.cpp).
#include <doctest/doctest.h>

#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"
#include "kernels/norms.h"
#include "kernels/softmax.h"

using namespace eat;
using namespace eat::test;

namespace {

const int64_t kRows = 37;
// Width 3 is below one warp; 4097 is past the largest block, so threads loop over the row.
const int64_t kCols[] = {3, 129, 1000, 4097};

}  // namespace

TEST_CASE("gpu softmax kernels match the CPU kernels (poisoned outputs)") {
  test::require_gpu();
  Generator gen(21);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (int64_t cols : kCols) {
      CAPTURE(cols);
      const Shape shape{kRows, cols};
      // Large logits (stddev 8, offset 50): a kernel without the max subtraction overflows.
      Tensor x = add(random_host(shape, gen, 8.0), Tensor::full(shape, 50.0)), g = random_host(shape, gen);
      Tensor rx = rounded(x, dt), rg = rounded(g, dt), ref = Tensor::empty(shape);
      Tensor y = poisoned_device(shape, dt);
      cuda::softmax_forward<T>(to_device(x, dt).data<T>(), y.data<T>(), kRows, cols);
      cpu::softmax_forward<float>(rx.data<float>(), ref.data<float>(), kRows, cols);
      check_close(y, ref, dt, "softmax_forward");
      // The backward from the same probabilities on both sides.
      Tensor ry = rounded(y.to(Device::cpu).to(DType::f32), dt);
      Tensor dx = poisoned_device(shape, dt);
      cuda::softmax_backward<T>(y.data<T>(), to_device(g, dt).data<T>(), dx.data<T>(), kRows, cols);
      cpu::softmax_backward<float>(ry.data<float>(), rg.data<float>(), ref.data<float>(), kRows, cols);
      check_close(dx, ref, dt, "softmax_backward");
    }
  });
}

TEST_CASE("gpu RMSNorm kernels match the CPU kernels, weight gradient included (poisoned outputs)") {
  test::require_gpu();
  Generator gen(22);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (int64_t cols : kCols) {
      for (bool with_weight : {true, false}) {
        CAPTURE(cols);
        CAPTURE(with_weight);
        const Shape shape{kRows, cols};
        Tensor x = random_host(shape, gen, 2.0), w = random_host({cols}, gen), g = random_host(shape, gen);
        Tensor rx = rounded(x, dt), rw = rounded(w, dt), rg = rounded(g, dt);
        Tensor dxin = to_device(x, dt), dw_in = to_device(w, dt), dg = to_device(g, dt);
        const T* wd = with_weight ? dw_in.data<T>() : nullptr;
        const float* wr = with_weight ? rw.data<float>() : nullptr;

        Tensor y = poisoned_device(shape, dt), r = poisoned_device({kRows}, DType::f32);
        Tensor ref = Tensor::empty(shape), rref = Tensor::empty({kRows}, DType::f64);
        cuda::rms_norm_forward<T>(dxin.data<T>(), wd, y.data<T>(), r.data<float>(), kRows, cols, 1e-5f);
        cpu::rms_norm_forward<float>(rx.data<float>(), wr, ref.data<float>(), rref.data<double>(), kRows, cols, 1e-5);
        check_close(y, ref, dt, "rms_norm_forward y");
        check_close(r, rref, DType::f32, "rms_norm_forward r");

        Tensor dx = poisoned_device(shape, dt), dw = poisoned_device({cols}, dt);
        cuda::rms_norm_backward<T>(dxin.data<T>(), wd, r.data<float>(), dg.data<T>(), dx.data<T>(), dw.data<T>(),
                                   kRows, cols, false);
        Tensor dwref = Tensor::empty({cols});
        cpu::rms_norm_backward<float>(rx.data<float>(), wr, rref.data<double>(), rg.data<float>(), ref.data<float>(),
                                      dwref.data<float>(), kRows, cols, false);
        check_close(dx, ref, dt, "rms_norm_backward dx");
        check_close(dw, dwref, dt, "rms_norm_backward dw");

        // Added onto a gradient so far: exactly that gradient plus the dx above, as add stores it.
        Tensor so_far = random_host(shape, gen), dx_sum = to_device(so_far, dt);
        cuda::rms_norm_backward<T>(dxin.data<T>(), wd, r.data<float>(), dg.data<T>(), dx_sum.data<T>(), nullptr,
                                   kRows, cols, true);
        CHECK(dx_sum.to_f64_vector() == add(to_device(so_far, dt), dx).to_f64_vector());

        // Run twice: the weight gradient is the same bits (no atomics).
        Tensor dw2 = poisoned_device({cols}, dt);
        cuda::rms_norm_backward<T>(dxin.data<T>(), wd, r.data<float>(), dg.data<T>(), nullptr, dw2.data<T>(),
                                   kRows, cols, false);
        CHECK(dw2.to_f64_vector() == dw.to_f64_vector());
      }
    }
  });
}

TEST_CASE("gpu L2 normalisation kernels match the CPU kernels, both sides of eps (poisoned outputs)") {
  test::require_gpu();
  Generator gen(23);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (int64_t cols : kCols) {
      CAPTURE(cols);
      const Shape shape{kRows, cols};
      Tensor x = random_host(shape, gen), g = random_host(shape, gen);
      // Row 0 is tiny: its norm (about 1e-4 sqrt(cols) <= 0.007) falls under eps = 0.01, where the
      // denominator is the constant eps; the other rows' norms are near sqrt(cols) >= 1.
      for (int64_t j = 0; j < cols; ++j) x.data<float>()[j] *= 1e-4f;
      const double eps = 0.01;
      Tensor rx = rounded(x, dt), rg = rounded(g, dt), ref = Tensor::empty(shape);
      Tensor dxin = to_device(x, dt);
      Tensor y = poisoned_device(shape, dt), norm = poisoned_device({kRows}, DType::f32);
      Tensor nref = Tensor::empty({kRows}, DType::f64);
      cuda::l2_normalize_forward<T>(dxin.data<T>(), y.data<T>(), norm.data<float>(), kRows, cols, static_cast<float>(eps));
      cpu::l2_normalize_forward<float>(rx.data<float>(), ref.data<float>(), nref.data<double>(), kRows, cols, eps);
      check_close(y, ref, dt, "l2_normalize_forward y");
      check_close(norm, nref, DType::f32, "l2_normalize_forward norm");
      Tensor dx = poisoned_device(shape, dt);
      cuda::l2_normalize_backward<T>(dxin.data<T>(), norm.data<float>(), to_device(g, dt).data<T>(), dx.data<T>(), kRows,
                                     cols, static_cast<float>(eps));
      cpu::l2_normalize_backward<float>(rx.data<float>(), nref.data<double>(), rg.data<float>(), ref.data<float>(), kRows,
                                        cols, eps);
      check_close(dx, ref, dt, "l2_normalize_backward");
    }
  });
}
