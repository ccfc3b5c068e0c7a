// softmax over the last dimension; the backward needs only the output.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/softmax.h"

namespace eat {

Tensor softmax(const Tensor& x) {
  check_floating("softmax", x);
  EAT_CHECK(x.dim() >= 1 && x.size(-1) > 0, "softmax: input ", shape_str(x.shape()), " has an empty last dimension");
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty_like(x);
  EAT_KERNEL("softmax", x, softmax_forward, x.data<T>(), y.data<T>(), rows, cols);
  if (autograd::needs_record({&x})) {
    autograd::record("softmax", {x}, {y}, [y = y.detach(), rows, cols](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor dx = Tensor::empty_like(y);
      EAT_KERNEL("softmax backward", y, softmax_backward, y.data<T>(), g[0].data<T>(), dx.data<T>(), rows, cols);
      return {dx};
    });
  }
  return y;
}

}  // namespace eat
