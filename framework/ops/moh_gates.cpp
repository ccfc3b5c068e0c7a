// moh_gates: MoH's two-stage router (kernels/moh_gates.h). Token rows may carry any leading shape
// ([N, .] or [B, T, .]); the three logit sets must share it. The backward recomputes the softmaxes
// and the selection from the saved logits, and takes the gradients of gates and routed_probs in
// one kernel call (selected has none).
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/moh_gates.h"

namespace eat {

namespace {

constexpr const char* kOp = "moh_gates";

// x's shape with the last dimension replaced by n.
Shape with_last(const Shape& shape, int64_t n) {
  Shape s = shape;
  s.back() = n;
  return s;
}

// A logit set beside routed_logits: floating, same dtype and device, same token rows, `width`
// entries per row.
void check_beside_routed(const Tensor& x, const char* name, const Tensor& routed, int64_t width) {
  check_floating(kOp, x);
  check_same_dtype(kOp, routed, x);
  check_same_device(kOp, routed, x);
  EAT_CHECK(x.dim() >= 1 && x.shape() == with_last(routed.shape(), width), kOp, ": ", name, " ",
            shape_str(x.shape()), " must be ", shape_str(with_last(routed.shape(), width)), " for routed_logits ",
            shape_str(routed.shape()));
}

MohGatesShape checked_shape(const Tensor& shared, const Tensor& routed, const Tensor& mix, int64_t top_k) {
  check_floating(kOp, routed);
  EAT_CHECK(routed.dim() >= 1, kOp, ": routed_logits must be [N, R], got a scalar");
  const int64_t R = routed.size(-1);
  EAT_CHECK(R >= 1 && R <= kMohMaxRouted, kOp, ": routed_logits ", shape_str(routed.shape()), " has R = ", R,
            " routed heads; 1 to ", kMohMaxRouted, " are supported");
  EAT_CHECK(top_k >= 1 && top_k <= R, kOp, ": top_k = ", top_k, " must be in [1, R = ", R, "]");
  const int64_t h_s = shared.defined() ? shared.size(-1) : 0;
  if (shared.defined()) check_beside_routed(shared, "shared_logits", routed, h_s);
  if (h_s == 0)
    EAT_CHECK(!mix.defined(), kOp, ": mix_logits ", mix.describe(),
              " given without shared heads (h_s = 0: the routed gates stand alone; leave mix_logits undefined)");
  else {
    EAT_CHECK(mix.defined(), kOp, ": mix_logits [N, 2] is required with h_s = ", h_s, " shared heads");
    check_beside_routed(mix, "mix_logits", routed, 2);
  }
  return {routed.numel() / R, h_s, R, top_k};
}

}  // namespace

MohGates moh_gates(const Tensor& shared_logits, const Tensor& routed_logits, const Tensor& mix_logits, int64_t top_k) {
  const MohGatesShape s = checked_shape(shared_logits, routed_logits, mix_logits, top_k);
  const Tensor& like = routed_logits;
  MohGates out{Tensor::empty(with_last(like.shape(), s.h_s + s.R), like.dtype(), like.device()),
               Tensor::empty_like(like), Tensor::empty_like(like)};
  EAT_KERNEL(kOp, like, moh_gates_forward, s, data_or_null<T>(shared_logits), like.data<T>(),
             data_or_null<T>(mix_logits), out.gates.data<T>(), out.routed_probs.data<T>(), out.selected.data<T>());
  if (autograd::needs_record({&shared_logits, &routed_logits, &mix_logits})) {
    const bool ns = shared_logits.defined() && shared_logits.requires_grad();
    const bool nr = routed_logits.requires_grad();
    const bool nm = mix_logits.defined() && mix_logits.requires_grad();
    auto saved = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };
    autograd::record(kOp, {shared_logits, routed_logits, mix_logits}, {out.gates, out.routed_probs},
                     [s, shared = saved(shared_logits), routed = routed_logits.detach(), mix = saved(mix_logits), ns,
                      nr, nm](const std::vector<Tensor>& g) {
                       Tensor dshared = empty_like_if(ns, shared), drouted = empty_like_if(nr, routed);
                       Tensor dmix = empty_like_if(nm, mix);
                       const Tensor& dgates = g[0];
                       const Tensor& dprobs = g[1];
                       EAT_KERNEL("moh_gates backward", routed, moh_gates_backward, s, data_or_null<T>(shared),
                                  routed.data<T>(), data_or_null<T>(mix), data_or_null<T>(dgates),
                                  data_or_null<T>(dprobs), data_or_null<T>(dshared), data_or_null<T>(drouted),
                                  data_or_null<T>(dmix));
                       return std::vector<Tensor>{dshared, drouted, dmix};
                     });
  }
  return out;
}

}  // namespace eat
