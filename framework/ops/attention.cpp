// attention: softmax attention over [B, T, H, d] heads, with a naive reference kernel and a tiled
// (online-softmax) kernel behind one op. The whole core is one autograd node.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/attention_dims.h"
#include "kernels/cpu/attention_naive.h"
#include "kernels/cpu/attention_tiled.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/attention_flash.h"
#endif

namespace eat {

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const AttentionDims dims = checked_attention_dims("attention", q, k, v, options);
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
