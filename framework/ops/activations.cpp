// silu, gelu, sigmoid: one pointwise kernel pair, selected by the activation.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/activations.h"

namespace eat {

namespace {

Tensor pointwise(const char* op, Activation act, const Tensor& x) {
  check_floating(op, x);
  Tensor y = Tensor::empty_like(x);
  EAT_KERNEL(op, x, activation_forward, act, x.data<T>(), y.data<T>(), x.numel());
  if (autograd::needs_record({&x})) {
    autograd::record(op, {x}, {y}, [op, act, x = x.detach()](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      // Over the incoming gradient when nothing else holds it.
      Tensor dx = autograd::reuse_or_new(g[0]);
      EAT_KERNEL(op, x, activation_backward, act, x.data<T>(), g[0].data<T>(), dx.data<T>(), x.numel());
      return {dx};
    });
  }
  return y;
}

}  // namespace

Tensor silu(const Tensor& x) { return pointwise("silu", Activation::silu, x); }
Tensor sigmoid(const Tensor& x) { return pointwise("sigmoid", Activation::sigmoid, x); }
Tensor gelu(const Tensor& x, GeluApprox approx) {
  return pointwise("gelu", approx == GeluApprox::tanh ? Activation::gelu_tanh : Activation::gelu_erf, x);
}

}  // namespace eat
