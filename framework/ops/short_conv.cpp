// short_conv: causal depthwise convolution over time (BASED, Titans).
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/cpu/short_conv.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/short_conv.h"
#include "runtime/cuda/stream.h"
#endif

namespace eat {

Tensor short_conv(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_floating("short_conv", x);
  check_dim("short_conv", x, 3, "x [B, T, C]");
  check_dim("short_conv", weight, 2, "weight [C, k]");
  check_same_dtype("short_conv", x, weight);
  check_same_device("short_conv", x, weight);
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), k = weight.size(1);
  EAT_CHECK(weight.size(0) == C && k >= 1, "short_conv: weight ", shape_str(weight.shape()), " must be [C, k] with C = ", C,
            " (x ", shape_str(x.shape()), ") and k >= 1");
  if (bias.defined()) {
    check_same_dtype("short_conv", x, bias);
    EAT_CHECK(bias.shape() == Shape{C}, "short_conv: bias ", shape_str(bias.shape()), " must be [", C, "]");
  }
  Tensor y = Tensor::empty_like(x);
  dispatch(
      "short_conv", x,
      [&]<typename T_>() {
        cpu::short_conv_forward<T_>(x.data<T_>(), weight.data<T_>(), bias.defined() ? bias.data<T_>() : nullptr, y.data<T_>(),
                                    B, T, C, k);
      },
      EAT_CUDA([&]<typename T_>() {
        cuda::short_conv_forward<T_>(x.data<T_>(), weight.data<T_>(), bias.defined() ? bias.data<T_>() : nullptr,
                                     y.data<T_>(), B, T, C, k, cuda::compute_stream());
      }));
  if (autograd::needs_record({&x, &weight, &bias})) {
    bool nx = x.requires_grad(), nw = weight.requires_grad(), nb = bias.defined() && bias.requires_grad();
    autograd::record("short_conv", {x, weight, bias}, {y},
                     [x = x.detach(), w = weight.detach(), nx, nw, nb, B, T, C, k](const std::vector<Tensor>& g) {
                       Tensor dx = nx ? Tensor::empty_like(x) : Tensor();
                       Tensor dw = nw ? Tensor::empty_like(w) : Tensor();
                       Tensor db = nb ? Tensor::empty({C}, x.dtype(), x.device()) : Tensor();
                       dispatch(
                           "short_conv backward", x,
                           [&]<typename T_>() {
                             cpu::short_conv_backward<T_>(x.data<T_>(), w.data<T_>(), g[0].data<T_>(),
                                                          nx ? dx.data<T_>() : nullptr, nw ? dw.data<T_>() : nullptr,
                                                          nb ? db.data<T_>() : nullptr, B, T, C, k);
                           },
                           EAT_CUDA([&]<typename T_>() {
                             // Per-chunk partial sums of the weight and bias gradients (deterministic reduction).
                             Tensor partial = nw || nb ? Tensor::empty({cuda::column_chunks(B * T), C * k}, DType::f32,
                                                                       x.device())
                                                       : Tensor();
                             cuda::short_conv_backward<T_>(x.data<T_>(), w.data<T_>(), g[0].data<T_>(),
                                                           nx ? dx.data<T_>() : nullptr, nw ? dw.data<T_>() : nullptr,
                                                           nb ? db.data<T_>() : nullptr,
                                                           nw || nb ? partial.data<float>() : nullptr, B, T, C, k,
                                                           cuda::compute_stream());
                           }));
                       return std::vector<Tensor>{dx, dw, db};
                     });
  }
  return y;
}

}  // namespace eat
