// add, mul, scale, sum, mean.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/elementwise.h"

namespace eat {

namespace {

void check_binary(const char* op, const Tensor& a, const Tensor& b) {
  check_floating(op, a);
  check_floating(op, b);
  check_same_shape(op, a, b);
  check_same_dtype(op, a, b);
  check_same_device(op, a, b);
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_binary("add", a, b);
  Tensor y = Tensor::empty_like(a);
  EAT_KERNEL("add", a, add_forward, a.data<T>(), b.data<T>(), y.data<T>(), a.numel());
  if (autograd::needs_record({&a, &b})) {
    autograd::record("add", {a, b}, {y}, [](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {g[0], g[0]};
    });
  }
  return y;
}

void add_into(const Tensor& a, const Tensor& b) {
  check_binary("add", a, b);
  EAT_KERNEL("add", a, add_forward, a.data<T>(), b.data<T>(), a.data<T>(), a.numel());
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_binary("mul", a, b);
  Tensor y = Tensor::empty_like(a);
  EAT_KERNEL("mul", a, mul_forward, a.data<T>(), b.data<T>(), y.data<T>(), a.numel());
  if (autograd::needs_record({&a, &b})) {
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    autograd::record("mul", {a, b}, {y},
                     [a = a.detach(), b = b.detach(), need_a, need_b](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       // da over the incoming gradient when nothing else holds it.
                       Tensor da = need_a ? autograd::reuse_or_new(g[0]) : Tensor();
                       Tensor db = empty_like_if(need_b, b);
                       EAT_KERNEL("mul backward", a, mul_backward, a.data<T>(), b.data<T>(), g[0].data<T>(),
                                  data_or_null<T>(da), data_or_null<T>(db), a.numel());
                       return {da, db};
                     });
  }
  return y;
}

Tensor scale(const Tensor& x, double s) {
  check_floating("scale", x);
  Tensor y = Tensor::empty_like(x);
  EAT_KERNEL("scale", x, scale_forward, x.data<T>(), s, y.data<T>(), x.numel());
  if (autograd::needs_record({&x})) {
    autograd::record("scale", {x}, {y}, [s](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {scale(g[0], s)};
    });
  }
  return y;
}

namespace {

// Reduces all elements to shape [1]; the backward broadcasts dy * factor to the input's shape.
Tensor reduce_all(const char* op, const Tensor& x, double factor) {
  check_floating(op, x);
  Tensor y = Tensor::empty({1}, x.dtype(), x.device());
  dispatch(
      op, x, [&]<typename T>() { y.data<T>()[0] = static_cast<T>(cpu::sum_forward<T>(x.data<T>(), x.numel()) * factor); },
      EAT_CUDA([&]<typename T>() {
        // The sum stays on the device (no synchronisation); the scratch holds the per-chunk partials.
        Tensor partial = Tensor::empty({cuda::sum_partials(x.numel())}, DType::f32, x.device());
        cuda::sum_forward<T, T>(x.data<T>(), x.numel(), static_cast<float>(factor), false, partial.data<float>(),
                                y.data<T>());
      }));
  if (autograd::needs_record({&x})) {
    autograd::record(op, {x}, {y}, [shape = x.shape(), factor, op](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor dx = Tensor::empty(shape, g[0].dtype(), g[0].device());
      dispatch(
          op, dx,
          [&]<typename T>() { cpu::fill<T>(dx.data<T>(), static_cast<T>(g[0].data<T>()[0] * factor), dx.numel()); },
          EAT_CUDA([&]<typename T>() {
            cuda::fill_scaled<T>(g[0].data<T>(), static_cast<float>(factor), dx.data<T>(), dx.numel());
          }));
      return {dx};
    });
  }
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_all("sum", x, 1.0); }

Tensor mean(const Tensor& x) {
  EAT_CHECK(x.numel() > 0, "mean: empty tensor ", shape_str(x.shape()));
  return reduce_all("mean", x, 1.0 / static_cast<double>(x.numel()));
}

}  // namespace eat
