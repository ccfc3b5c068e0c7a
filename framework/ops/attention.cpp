// attention: softmax attention over [B, T, H, d] heads, with a naive reference kernel and a tiled
// (online-softmax) kernel behind one op. The whole core is one autograd node.
#include <cmath>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/cpu/attention_naive.h"
#include "kernels/cpu/attention_tiled.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/attention_flash.h"
#endif

namespace eat {

namespace {

AttentionDims attention_dims(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const char* op = "attention";
  for (const Tensor* t : {&q, &k, &v}) check_floating(op, *t);
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  check_same_device(op, q, k);
  check_same_device(op, q, v);
  check_dim(op, q, 4, "q [B, T, H, d]");
  check_dim(op, k, 4, "k [B, T, H, d]");
  check_dim(op, v, 4, "v [B, T, H, e]");
  // No key for a query has no softmax; and the kernels read keys = 0 as "as many keys as queries".
  EAT_CHECK(k.size(1) > 0 || q.size(1) == 0, "attention: k ", shape_str(k.shape()), " holds no keys for the ",
            q.size(1), " queries of q ", shape_str(q.shape()), ": every query needs at least one key");
  const bool cross = k.size(1) != q.size(1) || options.query_offset != 0;  // queries are a slice of the keys
  EAT_CHECK(k.size(0) == q.size(0) && k.size(2) == q.size(2) && k.size(3) == q.size(3), "attention: q ",
            shape_str(q.shape()), " and k ", shape_str(k.shape()), " must have the same shape [B, T, H, d]");
  EAT_CHECK(!cross || options.impl == AttentionImpl::tiled, "attention: q ", shape_str(q.shape()), " and k ",
            shape_str(k.shape()), " must have the same shape [B, T, H, d] (keys longer than the queries, or a "
            "query_offset, need the tiled kernel)");
  EAT_CHECK(options.query_offset >= 0 && (!options.causal || options.query_offset + q.size(1) <= k.size(1)),
            "attention: queries at positions [", options.query_offset, ", ", options.query_offset + q.size(1),
            ") do not fit the ", k.size(1), " keys");
  EAT_CHECK(v.size(0) == k.size(0) && v.size(1) == k.size(1) && v.size(2) == k.size(2), "attention: v ",
            shape_str(v.shape()), " must share B, T, H with k ", shape_str(k.shape()));
  EAT_CHECK(q.size(3) > 0 && v.size(3) > 0, "attention: head widths must be positive, got q ", shape_str(q.shape()),
            " and v ", shape_str(v.shape()));
  EAT_CHECK(options.window_left >= -1, "attention: window_left must be >= 0 (a sliding window) or -1 (none), got ",
            options.window_left);
  EAT_CHECK(options.causal || options.window_left == -1, "attention: window_left = ", options.window_left,
            " needs causal = true (a sliding window is only defined for causal attention)");
  AttentionDims dims;
  dims.batch = q.size(0);
  dims.seq = q.size(1);
  dims.heads = q.size(2);
  dims.qk_dim = q.size(3);
  dims.v_dim = v.size(3);
  dims.causal = options.causal;
  dims.window_left = options.window_left;
  dims.keys = k.size(1);
  dims.query_offset = options.query_offset;
  dims.scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(dims.qk_dim)));
  EAT_CHECK(std::isfinite(dims.scale), "attention: scale must be finite, got ", dims.scale);
  return dims;
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const AttentionDims dims = attention_dims(q, k, v, options);
  // On CUDA there is only the flash kernel (tiled); the naive kernel is the CPU reference.
  const bool on_gpu = q.device() == Device::cuda;
  const bool tiled = options.impl == AttentionImpl::tiled || on_gpu;
  Tensor out = Tensor::empty({dims.batch, dims.seq, dims.heads, dims.v_dim}, v.dtype(), v.device());
  // Row log-sum-exps [B, H, T]: all the tiled backward needs besides q, k, v and out. The CUDA
  // kernel keeps them in f32 whatever the storage type: a bf16 log-sum-exp would put an error of
  // several percent into every recomputed probability.
  Tensor lse = tiled ? Tensor::empty({dims.batch, dims.heads, dims.seq}, on_gpu ? DType::f32 : q.dtype(), q.device())
                     : Tensor();
  dispatch(
      "attention", q,
      [&]<typename T>() {
        if (tiled)
          cpu::attention_tiled_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), lse.data<T>(), dims);
        else
          cpu::attention_naive_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), dims);
      },
      EAT_CUDA([&]<typename T>() {
        cuda::attention_flash_forward<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), lse.data<float>(),
                                         dims);
      }));
  if (autograd::needs_record({&q, &k, &v})) {
    const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
    autograd::record(
        "attention", {q, k, v}, {out},
        [q = q.detach(), k = k.detach(), v = v.detach(), o = tiled ? out.detach() : Tensor(), lse, dims, tiled,
         need_q, need_k, need_v](const std::vector<Tensor>& g) -> std::vector<Tensor> {
          const Tensor& dout = g[0];
          Tensor dq = empty_like_if(need_q, q);
          Tensor dk = empty_like_if(need_k, k);
          Tensor dv = empty_like_if(need_v, v);
          dispatch(
              "attention backward", q,
              [&]<typename T>() {
                T *dq_p = data_or_null<T>(dq), *dk_p = data_or_null<T>(dk), *dv_p = data_or_null<T>(dv);
                if (tiled)
                  cpu::attention_tiled_backward<T>(q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(), lse.data<T>(),
                                                   dout.data<T>(), dq_p, dk_p, dv_p, dims);
                else
                  cpu::attention_naive_backward<T>(q.data<T>(), k.data<T>(), v.data<T>(), dout.data<T>(), dq_p, dk_p,
                                                   dv_p, dims);
              },
              EAT_CUDA([&]<typename T>() {
                // dO . O per query row, f32 scratch of the backward.
                Tensor rowdot = Tensor::empty({dims.batch, dims.heads, dims.seq}, DType::f32, q.device());
                cuda::attention_flash_backward<T>(q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(),
                                                  lse.data<float>(), dout.data<T>(), data_or_null<T>(dq),
                                                  data_or_null<T>(dk), data_or_null<T>(dv),
                                                  rowdot.data<float>(), dims);
              }));
          return {dq, dk, dv};
        });
  }
  return out;
}

}  // namespace eat
