// lightning_attention: decayed causal linear attention through the naive reference, the
// token-by-token recurrence or the chunked (Lightning Attention-2) kernel.

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/head_inputs.h"
#include "kernels/cpu/lightning_chunked.h"
#include "kernels/cpu/lightning_naive.h"
#include "kernels/cpu/lightning_recurrent.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/lightning_chunked.h"
#endif

namespace eat {

namespace {

constexpr const char* kOp = "lightning_attention";

HeadShape checked_shape(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const std::vector<double>& decay, const Tensor& s0,
                                        const LightningOptions& options) {
  const HeadShape s = checked_head_inputs(kOp, q, k, v);
  EAT_CHECK(static_cast<int64_t>(decay.size()) == s.H, kOp, ": ", decay.size(), " decay values for ", s.H,
            " heads (q ", shape_str(q.shape()), "); give one lambda per head");
  for (size_t h = 0; h < decay.size(); ++h)
    EAT_CHECK(decay[h] > 0.0 && decay[h] <= 1.0, kOp, ": decay of head ", h, " is ", decay[h],
              "; lambda must lie in (0, 1]");  // also rejects NaN
  check_initial_state(kOp, s0, q, v, s.state(), "[B, H, d, e]", q.dtype());
  EAT_CHECK(options.block >= 1, kOp, ": block must be >= 1, got ", options.block);
  return s;
}

}  // namespace

std::pair<Tensor, Tensor> lightning_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const std::vector<double>& decay, const Tensor& initial_state,
                                              const LightningOptions& options) {
  const HeadShape s = checked_shape(q, k, v, decay, initial_state, options);
  const LightningImpl impl = options.impl;
  const int64_t block = options.block;
  Tensor o = Tensor::empty_like(v);
  Tensor final_state = Tensor::empty(s.state(), q.dtype(), q.device());
  const bool record = autograd::needs_record({&q, &k, &v, &initial_state});
  // The CPU chunked kernel keeps the state entering every block for its backward, which then
  // runs one sweep instead of two.
  Tensor block_states;
  if (record && impl == LightningImpl::chunked && q.device() == Device::cpu)
    block_states = Tensor::empty({s.B, s.H, cpu::lightning_block_count(s.T, block), s.d, s.e}, q.dtype());
  dispatch(kOp, q, [&]<typename T>() {
    const T* s0 = data_or_null<T>(initial_state);
    switch (impl) {
      case LightningImpl::naive:
        cpu::lightning_naive_forward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0, o.data<T>(),
                                        final_state.data<T>());
        break;
      case LightningImpl::recurrent:
        cpu::lightning_recurrent_forward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0, o.data<T>(),
                                            final_state.data<T>());
        break;
      case LightningImpl::chunked:
        cpu::lightning_chunked_forward<T>(s, block, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0,
                                          o.data<T>(), final_state.data<T>(), cpu::ChunkedSchedule::automatic,
                                          data_or_null<T>(block_states));
        break;
    }
  }, EAT_CUDA([&]<typename T>() {
    // The CUDA kernel is the chunked one whatever `impl` asks for: naive and recurrent are CPU
    // references, and every implementation computes the same function.
    cuda::lightning_chunked_forward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(),
                                       data_or_null<T>(initial_state), o.data<T>(), final_state.data<T>());
  }));
  if (record) {
    const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
    const bool need_s0 = initial_state.defined() && initial_state.requires_grad();
    Tensor s0 = initial_state.defined() ? initial_state.detach() : Tensor();  // the inter terms of dq need it
    autograd::record(
        kOp, {q, k, v, initial_state}, {o, final_state},
        [s, impl, block, decay, need_q, need_k, need_v, need_s0, q = q.detach(), k = k.detach(), v = v.detach(), s0,
         block_states](const std::vector<Tensor>& g) {
          Tensor dout = autograd::grad_or_zeros(g, 0, s.v(), q.dtype(), q.device());
          Tensor dfinal = autograd::grad_or_zeros(g, 1, s.state(), q.dtype(), q.device());
          Tensor dq = empty_like_if(need_q, q), dk = empty_like_if(need_k, k), dv = empty_like_if(need_v, v);
          Tensor ds0 = empty_like_if(need_s0, s0);
          dispatch("lightning_attention backward", q, [&]<typename T>() {
            const T* s0p = data_or_null<T>(s0);
            T *dqp = data_or_null<T>(dq), *dkp = data_or_null<T>(dk), *dvp = data_or_null<T>(dv);
            T* ds0p = data_or_null<T>(ds0);
            switch (impl) {
              case LightningImpl::naive:
                cpu::lightning_naive_backward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0p,
                                                 dout.data<T>(), dfinal.data<T>(), dqp, dkp, dvp, ds0p);
                break;
              case LightningImpl::recurrent:
                cpu::lightning_recurrent_backward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0p,
                                                     dout.data<T>(), dfinal.data<T>(), dqp, dkp, dvp, ds0p);
                break;
              case LightningImpl::chunked:
                cpu::lightning_chunked_backward<T>(s, block, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0p,
                                                   dout.data<T>(), dfinal.data<T>(), dqp, dkp, dvp, ds0p,
                                                   cpu::ChunkedSchedule::automatic, data_or_null<T>(block_states));
                break;
            }
          }, EAT_CUDA([&]<typename T>() {
            cuda::lightning_chunked_backward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(),
                                                data_or_null<T>(s0), dout.data<T>(), dfinal.data<T>(), data_or_null<T>(dq),
                                                data_or_null<T>(dk), data_or_null<T>(dv), data_or_null<T>(ds0));
          }));
          return std::vector<Tensor>{dq, dk, dv, ds0};
        });
  }
  return {o, final_state};
}

}  // namespace eat
