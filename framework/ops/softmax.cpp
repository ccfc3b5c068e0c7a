// softmax over the last dimension; the backward needs only the output.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/cpu/softmax.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/softmax.h"
#include "runtime/cuda/stream.h"
#endif

namespace eat {

Tensor softmax(const Tensor& x) {
  check_floating("softmax", x);
  EAT_CHECK(x.dim() >= 1 && x.size(-1) > 0, "softmax: input ", shape_str(x.shape()), " has an empty last dimension");
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty_like(x);
  dispatch(
      "softmax", x, [&]<typename T>() { cpu::softmax_forward<T>(x.data<T>(), y.data<T>(), rows, cols); },
      EAT_CUDA([&]<typename T>() { cuda::softmax_forward<T>(x.data<T>(), y.data<T>(), rows, cols, cuda::compute_stream()); }));
  if (autograd::needs_record({&x})) {
    autograd::record("softmax", {x}, {y}, [y = y.detach(), rows, cols](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor dx = Tensor::empty_like(y);
      dispatch(
          "softmax backward", y,
          [&]<typename T>() { cpu::softmax_backward<T>(y.data<T>(), g[0].data<T>(), dx.data<T>(), rows, cols); },
          EAT_CUDA([&]<typename T>() {
            cuda::softmax_backward<T>(y.data<T>(), g[0].data<T>(), dx.data<T>(), rows, cols, cuda::compute_stream());
          }));
      return {dx};
    });
  }
  return y;
}

}  // namespace eat
