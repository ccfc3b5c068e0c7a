// short_conv: causal depthwise convolution over time (BASED, Titans).
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/short_conv.h"

namespace eat {

Tensor short_conv(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_floating("short_conv", x);
  check_dim("short_conv", x, 3, "x [B, T, C]");
  check_dim("short_conv", weight, 2, "weight [C, k]");
  check_same_dtype("short_conv", x, weight);
  check_same_device("short_conv", x, weight);
  const int64_t B = x.size(0), len = x.size(1), C = x.size(2), k = weight.size(1);
  EAT_CHECK(weight.size(0) == C && k >= 1, "short_conv: weight ", shape_str(weight.shape()), " must be [C, k] with C = ", C,
            " (x ", shape_str(x.shape()), ") and k >= 1");
  if (bias.defined()) {
    check_same_dtype("short_conv", x, bias);
    EAT_CHECK(bias.shape() == Shape{C}, "short_conv: bias ", shape_str(bias.shape()), " must be [", C, "]");
  }
  Tensor y = Tensor::empty_like(x);
  EAT_KERNEL("short_conv", x, short_conv_forward, x.data<T>(), weight.data<T>(), data_or_null<T>(bias), y.data<T>(), B, len,
             C, k);
  if (autograd::needs_record({&x, &weight, &bias})) {
    bool nx = x.requires_grad(), nw = weight.requires_grad(), nb = bias.defined() && bias.requires_grad();
    autograd::record("short_conv", {x, weight, bias}, {y},
                     [x = x.detach(), w = weight.detach(), nx, nw, nb, B, len, C, k](const std::vector<Tensor>& g) {
                       Tensor dx = empty_like_if(nx, x), dw = empty_like_if(nw, w);
                       Tensor db = nb ? Tensor::empty({C}, x.dtype(), x.device()) : Tensor();
                       EAT_KERNEL("short_conv backward", x, short_conv_backward, x.data<T>(), w.data<T>(), g[0].data<T>(),
                                  data_or_null<T>(dx), data_or_null<T>(dw), data_or_null<T>(db), B, len, C, k);
                       return std::vector<Tensor>{dx, dw, db};
                     });
  }
  return y;
}

}  // namespace eat
