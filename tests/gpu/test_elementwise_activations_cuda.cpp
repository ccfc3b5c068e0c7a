// CUDA elementwise ops, activations and the GLU gate against their CPU kernels at kernel level, with
// NaN-poisoned outputs (the Tensor-level ops: test_op_table_cuda.cpp).
#include <doctest/doctest.h>

#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"
#include "kernels/activations.h"
#include "kernels/elementwise.h"
#include "kernels/glu_gate.h"

using namespace eat;
using namespace eat::test;

namespace {

const int64_t kSizes[] = {1, 129, 1000, 4097, 37 * 129};

}  // namespace

TEST_CASE("gpu elementwise kernels match the CPU kernels (poisoned outputs)") {
  test::require_gpu();
  Generator gen(11);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (int64_t n : kSizes) {
      CAPTURE(n);
      Tensor a = random_host({n}, gen), b = random_host({n}, gen), g = random_host({n}, gen);
      Tensor ra = rounded(a, dt), rb = rounded(b, dt), rg = rounded(g, dt);
      Tensor da = to_device(a, dt), db = to_device(b, dt), dg = to_device(g, dt);
      Tensor ref = Tensor::empty({n}), ref2 = Tensor::empty({n});

      Tensor y = poisoned_device({n}, dt);
      cuda::add_forward<T>(da.data<T>(), db.data<T>(), y.data<T>(), n);
      cpu::add_forward<float>(ra.data<float>(), rb.data<float>(), ref.data<float>(), n);
      check_close(y, ref, dt, "add_forward");

      y = poisoned_device({n}, dt);
      cuda::mul_forward<T>(da.data<T>(), db.data<T>(), y.data<T>(), n);
      cpu::mul_forward<float>(ra.data<float>(), rb.data<float>(), ref.data<float>(), n);
      check_close(y, ref, dt, "mul_forward");

      Tensor dda = poisoned_device({n}, dt), ddb = poisoned_device({n}, dt);
      cuda::mul_backward<T>(da.data<T>(), db.data<T>(), dg.data<T>(), dda.data<T>(), ddb.data<T>(), n);
      cpu::mul_backward<float>(ra.data<float>(), rb.data<float>(), rg.data<float>(), ref.data<float>(), ref2.data<float>(), n);
      check_close(dda, ref, dt, "mul_backward da");
      check_close(ddb, ref2, dt, "mul_backward db");

      y = poisoned_device({n}, dt);
      cuda::scale_forward<T>(da.data<T>(), -0.37f, y.data<T>(), n);
      cpu::scale_forward<float>(ra.data<float>(), -0.37f, ref.data<float>(), n);
      check_close(y, ref, dt, "scale_forward");

      // Sums of positive values: a relative error on a sum that cancels to nearly zero would
      // measure the cancellation, not the kernel.
      Tensor p = Tensor::uniform({n}, gen, 0.5, 1.5);
      Tensor dp = to_device(p, dt);
      Tensor partial = poisoned_device({cuda::sum_partials(n)}, DType::f32);
      for (bool square : {false, true}) {
        CAPTURE(square);
        Tensor sum = poisoned_device({1}, dt);
        cuda::sum_forward<T, T>(dp.data<T>(), n, 0.5f, square, partial.data<float>(), sum.data<T>());
        Tensor rp = rounded(p, dt);
        if (square) {
          cpu::mul_forward<float>(rp.data<float>(), rp.data<float>(), rp.data<float>(), n);
        }
        Tensor want = Tensor::full({1}, 0.5 * cpu::sum_forward<float>(rp.data<float>(), n));
        check_close(sum, want, dt, "sum_forward");
      }

      Tensor scalar = to_device(Tensor::full({1}, 1.75), dt);
      y = poisoned_device({n}, dt);
      cuda::fill_scaled<T>(scalar.data<T>(), 0.25f, y.data<T>(), n);
      check_close(y, Tensor::full({n}, 1.75 * 0.25), dt, "fill_scaled");
    }
  });
}

TEST_CASE("gpu activation and glu_gate kernels match the CPU kernels (poisoned outputs)") {
  test::require_gpu();
  Generator gen(12);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (int64_t n : kSizes) {
      CAPTURE(n);
      Tensor x = random_host({n}, gen, 3.0), b = random_host({n}, gen), g = random_host({n}, gen);
      Tensor rx = rounded(x, dt), rb = rounded(b, dt), rg = rounded(g, dt);
      Tensor dx = to_device(x, dt), db = to_device(b, dt), dg = to_device(g, dt);
      Tensor ref = Tensor::empty({n}), ref2 = Tensor::empty({n});
      for (Activation act : {Activation::silu, Activation::gelu_erf, Activation::gelu_tanh,
                                  Activation::sigmoid}) {
        CAPTURE(static_cast<int>(act));
        Tensor y = poisoned_device({n}, dt);
        cuda::activation_forward<T>(act, dx.data<T>(), y.data<T>(), n);
        cpu::activation_forward<float>(act, rx.data<float>(), ref.data<float>(), n);
        check_close(y, ref, dt, "activation_forward");
        Tensor d = poisoned_device({n}, dt);
        cuda::activation_backward<T>(act, dx.data<T>(), dg.data<T>(), d.data<T>(), n);
        cpu::activation_backward<float>(act, rx.data<float>(), rg.data<float>(), ref.data<float>(), n);
        check_close(d, ref, dt, "activation_backward");
      }
      for (bool silu : {true, false}) {
        CAPTURE(silu);
        Tensor y = poisoned_device({n}, dt);
        cuda::glu_gate_forward<T>(silu, dx.data<T>(), db.data<T>(), y.data<T>(), n);
        cpu::glu_gate_forward<float>(silu, rx.data<float>(), rb.data<float>(), ref.data<float>(), n);
        check_close(y, ref, dt, "glu_gate_forward");
        Tensor da = poisoned_device({n}, dt), ddb = poisoned_device({n}, dt);
        cuda::glu_gate_backward<T>(silu, dx.data<T>(), db.data<T>(), dg.data<T>(), da.data<T>(), ddb.data<T>(), n);
        cpu::glu_gate_backward<float>(silu, rx.data<float>(), rb.data<float>(), rg.data<float>(), ref.data<float>(),
                                      ref2.data<float>(), n);
        check_close(da, ref, dt, "glu_gate_backward da");
        check_close(ddb, ref2, dt, "glu_gate_backward db");
      }
    }
  });
}
