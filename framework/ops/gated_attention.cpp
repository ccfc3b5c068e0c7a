// gated_attention: MoH's softmax attention with gated (query token, head) pairs
// (kernels/gated_attention.h). The forward saves y and the active rows' log-sum-exps (RowStat
// precision: f64 on the CPU, f32 on CUDA); the backward recomputes the active rows'
// probabilities from them and writes the gradients of q, k, v and the gates at once.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/attention_dims.h"
#include "framework/ops/row_stats.h"
#include "kernels/gated_attention.h"

namespace eat {

namespace {

constexpr const char* kOp = "gated_attention";

AttentionDims checked_dims(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& gates,
                           const AttentionOptions& options) {
  EAT_CHECK(options.prefix == 0, kOp, ": persistent keys (prefix = ", options.prefix,
            ") are not supported; k and v must hold the sequence's keys only");
  const AttentionDims dims = checked_attention_dims(kOp, q, k, v, options);
  EAT_CHECK(options.impl == AttentionImpl::tiled, kOp, ": only the tiled kernels skip inactive heads; impl must be "
            "AttentionImpl::tiled");
  check_floating(kOp, gates);
  check_same_dtype(kOp, q, gates);
  check_same_device(kOp, q, gates);
  EAT_CHECK(gates.shape() == Shape({dims.batch, dims.seq, dims.heads}), kOp, ": gates ", shape_str(gates.shape()),
            " must be [B, T, H] = ", shape_str({dims.batch, dims.seq, dims.heads}), " for q ", shape_str(q.shape()));
  return dims;
}

}  // namespace

Tensor gated_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& gates,
                       const AttentionOptions& options) {
  const AttentionDims dims = checked_dims(q, k, v, gates, options);
  Tensor y = Tensor::empty({dims.batch, dims.seq, dims.heads, dims.v_dim}, v.dtype(), v.device());
  Tensor lse = row_stats(dims.batch * dims.heads * dims.seq, q);
  EAT_KERNEL(kOp, q, gated_attention_forward, dims, q.data<T>(), k.data<T>(), v.data<T>(), gates.data<T>(),
             y.data<T>(), row_stat_data(lse));
  if (autograd::needs_record({&q, &k, &v, &gates})) {
    autograd::record(
        kOp, {q, k, v, gates}, {y},
        [dims, q = q.detach(), k = k.detach(), v = v.detach(), gates = gates.detach(), y_saved = y.detach(),
         lse](const std::vector<Tensor>& g) {
          Tensor dy = autograd::grad_or_zeros(g, 0, y_saved.shape(), q.dtype(), q.device());
          Tensor dq = Tensor::empty_like(q), dk = Tensor::empty_like(k), dv = Tensor::empty_like(v);
          Tensor dgates = Tensor::empty_like(gates);
          EAT_KERNEL("gated_attention backward", q, gated_attention_backward, dims, q.data<T>(), k.data<T>(),
                     v.data<T>(), gates.data<T>(), y_saved.data<T>(), row_stat_data(lse), dy.data<T>(),
                     dq.data<T>(), dk.data<T>(), dv.data<T>(), dgates.data<T>());
          return std::vector<Tensor>{dq, dk, dv, dgates};
        });
  }
  return y;
}

}  // namespace eat
