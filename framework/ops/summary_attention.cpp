// summary_attention: RAT's softmax attention over chunk summaries with one private key per query
// (kernels/summary_attention.h). The forward saves the row log-sum-exp (RowStat precision: f64 on
// the CPU, f32 on CUDA) and y; the backward recomputes the probabilities from them and writes the
// gradients of all five inputs at once.

#include <cmath>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/head_inputs.h"
#include "framework/ops/row_stats.h"
#include "kernels/summary_attention.h"

namespace eat {

namespace {

constexpr const char* kOp = "summary_attention";

// k_sum [B, C, H, d] and v_sum [B, C, H, e] beside q [B, T, H, d] and v [B, T, H, e]; returns C.
int64_t checked_summaries(const Tensor& q, const Tensor& v, const Tensor& k_sum, const Tensor& v_sum) {
  for (const Tensor* t : {&k_sum, &v_sum}) {
    check_floating(kOp, *t);
    check_dim(kOp, *t, 4, "k_sum [B, C, H, d] and v_sum [B, C, H, e]");
    check_same_dtype(kOp, q, *t);
    check_same_device(kOp, q, *t);
  }
  const int64_t C = k_sum.size(1);
  EAT_CHECK(k_sum.shape() == Shape({q.size(0), C, q.size(2), q.size(3)}), kOp, ": k_sum ", shape_str(k_sum.shape()),
            " must be [B, C, H, d] for q ", shape_str(q.shape()));
  EAT_CHECK(v_sum.shape() == Shape({v.size(0), C, v.size(2), v.size(3)}), kOp, ": v_sum ", shape_str(v_sum.shape()),
            " must be [B, C, H, e] = ", shape_str({v.size(0), C, v.size(2), v.size(3)}), " for v ",
            shape_str(v.shape()), " and k_sum ", shape_str(k_sum.shape()));
  return C;
}

SummaryAttentionArgs checked_args(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& k_sum,
                                  const Tensor& v_sum, const SummaryAttentionOptions& options, HeadShape& shape) {
  shape = checked_head_inputs(kOp, q, k, v);
  const int64_t C = checked_summaries(q, v, k_sum, v_sum);
  EAT_CHECK(options.chunk >= 1, kOp, ": chunk must be >= 1, got ", options.chunk);
  EAT_CHECK(options.query_offset >= 0, kOp, ": query_offset must be >= 0, got ", options.query_offset);
  const double scale = options.scale.value_or(shape.d > 0 ? 1.0 / std::sqrt(static_cast<double>(shape.d)) : 1.0);
  return {C, options.chunk, options.query_offset, scale};
}

}  // namespace

Tensor summary_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& k_sum, const Tensor& v_sum,
                         const SummaryAttentionOptions& options) {
  HeadShape s{};
  const SummaryAttentionArgs args = checked_args(q, k, v, k_sum, v_sum, options, s);
  Tensor y = Tensor::empty_like(v);
  Tensor lse = row_stats(s.B * s.H * s.T, q);
  EAT_KERNEL(kOp, q, summary_attention_forward, s, args, q.data<T>(), k.data<T>(), v.data<T>(), k_sum.data<T>(),
             v_sum.data<T>(), y.data<T>(), row_stat_data(lse));
  if (autograd::needs_record({&q, &k, &v, &k_sum, &v_sum})) {
    autograd::record(
        kOp, {q, k, v, k_sum, v_sum}, {y},
        [s, args, q = q.detach(), k = k.detach(), v = v.detach(), k_sum = k_sum.detach(), v_sum = v_sum.detach(),
         y_saved = y.detach(), lse](const std::vector<Tensor>& g) {
          Tensor dy = autograd::grad_or_zeros(g, 0, s.v(), q.dtype(), q.device());
          Tensor dq = Tensor::empty_like(q), dk = Tensor::empty_like(k), dv = Tensor::empty_like(v);
          Tensor dk_sum = Tensor::empty_like(k_sum), dv_sum = Tensor::empty_like(v_sum);
          EAT_KERNEL("summary_attention backward", q, summary_attention_backward, s, args, q.data<T>(), k.data<T>(),
                     v.data<T>(), k_sum.data<T>(), v_sum.data<T>(), y_saved.data<T>(), row_stat_data(lse),
                     dy.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>(), dk_sum.data<T>(), dv_sum.data<T>());
          return std::vector<Tensor>{dq, dk, dv, dk_sum, dv_sum};
        });
  }
  return y;
}

}  // namespace eat
