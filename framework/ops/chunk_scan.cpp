// chunk_scan: RAT's chunk-reset gated scan (kernels/chunk_scan.h). The backward recomputes the
// scan from the inputs, so nothing but the inputs is kept for it.
#include <utility>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/chunk_scan.h"

namespace eat {

namespace {

constexpr const char* kOp = "chunk_scan";

ChunkScanShape checked_shape(const Tensor& x, const Tensor& gate_logit, int64_t chunk, const Tensor& initial,
                             int64_t phase) {
  check_floating(kOp, x);
  check_dim(kOp, x, 3, "x [B, T, C]");
  check_same_dtype(kOp, x, gate_logit);
  check_same_device(kOp, x, gate_logit);
  EAT_CHECK(gate_logit.shape() == x.shape(), kOp, ": gate_logit ", shape_str(gate_logit.shape()),
            " must have x's shape ", shape_str(x.shape()));
  EAT_CHECK(chunk >= 1, kOp, ": chunk must be at least 1, got ", chunk);
  EAT_CHECK(phase >= 0, kOp, ": phase must be at least 0, got ", phase);
  const ChunkScanShape s{x.size(0), x.size(1), x.size(2), chunk, phase};
  if (initial.defined()) {
    check_same_dtype(kOp, x, initial);
    check_same_device(kOp, x, initial);
    EAT_CHECK(initial.shape() == (Shape{s.B, s.C}), kOp, ": initial ", shape_str(initial.shape()),
              " must be [B, C] = [", s.B, ", ", s.C, "] (x ", shape_str(x.shape()), ")");
  }
  return s;
}

}  // namespace

Tensor chunk_scan(const Tensor& x, const Tensor& gate_logit, int64_t chunk, const Tensor& initial, int64_t phase) {
  const ChunkScanShape s = checked_shape(x, gate_logit, chunk, initial, phase);
  Tensor h = Tensor::empty_like(x);
  EAT_KERNEL(kOp, x, chunk_scan_forward, s, x.data<T>(), gate_logit.data<T>(), data_or_null<T>(initial), h.data<T>());
  if (autograd::needs_record({&x, &gate_logit, &initial})) {
    const bool nx = x.requires_grad(), ng = gate_logit.requires_grad();
    const bool ni = initial.defined() && initial.requires_grad();
    Tensor saved_initial = initial.defined() ? initial.detach() : Tensor();
    autograd::record(kOp, {x, gate_logit, initial}, {h},
                     [s, x = x.detach(), gate_logit = gate_logit.detach(), initial = std::move(saved_initial), nx, ng,
                      ni](const std::vector<Tensor>& g) {
                       Tensor dx = empty_like_if(nx, x), dlogit = empty_like_if(ng, gate_logit);
                       Tensor dinitial = empty_like_if(ni, initial);
                       EAT_KERNEL("chunk_scan backward", x, chunk_scan_backward, s, x.data<T>(), gate_logit.data<T>(),
                                  data_or_null<T>(initial), g[0].data<T>(), data_or_null<T>(dx),
                                  data_or_null<T>(dlogit), data_or_null<T>(dinitial));
                       return std::vector<Tensor>{dx, dlogit, dinitial};
                     });
  }
  return h;
}

}  // namespace eat
