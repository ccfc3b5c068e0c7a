// silu, gelu, sigmoid: one pointwise kernel pair, selected by the activation.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/cpu/activations.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/activations.h"
#include "runtime/cuda/stream.h"
#endif

namespace eat {

namespace {

Tensor pointwise(const char* op, cpu::Activation act, const Tensor& x) {
  check_floating(op, x);
  Tensor y = Tensor::empty_like(x);
  dispatch(
      op, x, [&]<typename T>() { cpu::activation_forward<T>(act, x.data<T>(), y.data<T>(), x.numel()); },
      EAT_CUDA([&]<typename T>() {
        cuda::activation_forward<T>(act, x.data<T>(), y.data<T>(), x.numel(), cuda::compute_stream());
      }));
  if (autograd::needs_record({&x})) {
    autograd::record(op, {x}, {y}, [op, act, x = x.detach()](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor dx = Tensor::empty_like(x);
      dispatch(
          op, x,
          [&]<typename T>() { cpu::activation_backward<T>(act, x.data<T>(), g[0].data<T>(), dx.data<T>(), x.numel()); },
          EAT_CUDA([&]<typename T>() {
            cuda::activation_backward<T>(act, x.data<T>(), g[0].data<T>(), dx.data<T>(), x.numel(),
                                         cuda::compute_stream());
          }));
      return {dx};
    });
  }
  return y;
}

}  // namespace

Tensor silu(const Tensor& x) { return pointwise("silu", cpu::Activation::silu, x); }
Tensor sigmoid(const Tensor& x) { return pointwise("sigmoid", cpu::Activation::sigmoid, x); }
Tensor gelu(const Tensor& x, GeluApprox approx) {
  return pointwise("gelu", approx == GeluApprox::tanh ? cpu::Activation::gelu_tanh : cpu::Activation::gelu_erf, x);
}

}  // namespace eat
