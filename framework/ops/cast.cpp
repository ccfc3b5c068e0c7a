// cast: the differentiable element-type conversion mixed precision is built from. The forward is
// Tensor::to(DType) (the device cast kernel on CUDA); the backward converts the gradient back to
// the input's type, so an f32 master weight cast to bf16 for a matmul receives an f32 gradient.
#include "framework/autograd.h"
#include "framework/ops.h"

namespace eat {

Tensor cast(const Tensor& x, DType dtype) {
  check_floating("cast", x);
  EAT_CHECK(is_floating(dtype), "cast: target type must be floating, got ", dtype_name(dtype), " for ", x.describe());
  if (x.dtype() == dtype) return x;  // nothing to convert, nothing recorded
  Tensor y = x.to(dtype);
  if (autograd::needs_record({&x})) {
    autograd::record("cast", {x}, {y}, [from = x.dtype()](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {g[0].to(from)};
    });
  }
  return y;
}

}  // namespace eat
