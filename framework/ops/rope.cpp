// rope: a rotation per (position, frequency); the backward rotates back. A position is a token's
// or, with chunk > 1, its chunk's (RAT).
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/rope.h"

namespace eat {

namespace {

// y into `into` (x itself in the backward, when nothing else holds the incoming gradient), or a
// fresh tensor.
Tensor rope_impl(const Tensor& x, double theta, int64_t offset, int64_t chunk, bool inverse, Tensor into = Tensor()) {
  Tensor y = into.defined() ? into : Tensor::empty_like(x);
  EAT_KERNEL("rope", x, rope_apply, x.data<T>(), y.data<T>(), x.size(0), x.size(1), x.size(2), x.size(3), theta, offset,
             chunk, inverse);
  if (autograd::needs_record({&x})) {
    autograd::record("rope", {x}, {y}, [theta, offset, chunk, inverse](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {rope_impl(g[0], theta, offset, chunk, !inverse, autograd::reuse_or_new(g[0]))};
    });
  }
  return y;
}

}  // namespace

Tensor rope(const Tensor& x, double theta, int64_t position_offset, int64_t chunk) {
  check_floating("rope", x);
  check_dim("rope", x, 4, "x [B, T, H, d]");
  EAT_CHECK(x.size(3) % 2 == 0, "rope: head dimension must be even, got x ", shape_str(x.shape()));
  EAT_CHECK(theta > 0, "rope: theta must be positive, got ", theta);
  EAT_CHECK(position_offset >= 0, "rope: position_offset must be >= 0, got ", position_offset);
  EAT_CHECK(chunk >= 1, "rope: chunk must be >= 1, got ", chunk);
  return rope_impl(x, theta, position_offset, chunk, false);
}

}  // namespace eat
