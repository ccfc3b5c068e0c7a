// tile_last: copies of the last axis side by side; the backward sums them.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/tile.h"

namespace eat {

Tensor tile_last(const Tensor& x, int64_t times) {
  check_floating("tile_last", x);
  EAT_CHECK(x.dim() >= 1, "tile_last: x must have at least one axis");
  EAT_CHECK(times >= 1, "tile_last: times must be >= 1, got ", times);
  if (times == 1) return x;
  const int64_t n = x.size(x.dim() - 1), rows = n == 0 ? 0 : x.numel() / n;
  Shape shape = x.shape();
  shape.back() *= times;
  Tensor y = Tensor::empty(shape, x.dtype(), x.device());
  EAT_KERNEL("tile_last", x, tile_last_forward, x.data<T>(), y.data<T>(), rows, n, times);
  if (autograd::needs_record({&x})) {
    autograd::record("tile_last", {x}, {y}, [shape = x.shape(), dtype = x.dtype(), device = x.device(), rows, n,
                                             times](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor dx = Tensor::empty(shape, dtype, device);
      EAT_KERNEL("tile_last backward", dx, tile_last_backward, g[0].data<T>(), dx.data<T>(), rows, n, times);
      return {dx};
    });
  }
  return y;
}

}  // namespace eat
