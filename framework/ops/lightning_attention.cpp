// lightning_attention: decayed causal linear attention through the naive reference, the
// token-by-token recurrence or the chunked (Lightning Attention-2) kernel.

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/linear_attention_dims.h"
#include "kernels/cpu/lightning_chunked.h"
#include "kernels/cpu/lightning_naive.h"
#include "kernels/cpu/lightning_recurrent.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/lightning_chunked.h"
#include "runtime/cuda/stream.h"
#endif

namespace eat {

namespace {

constexpr const char* kOp = "lightning_attention";

cpu::LinearAttentionShape checked_shape(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const std::vector<double>& decay, const Tensor& s0,
                                        const LinearAttentionOptions& options) {
  for (const Tensor* t : {&q, &k, &v}) {
    check_floating(kOp, *t);
    check_dim(kOp, *t, 4, "q, k [B, T, H, d] and v [B, T, H, e]");
  }
  check_same_dtype(kOp, q, k);
  check_same_dtype(kOp, q, v);
  check_same_device(kOp, q, k);
  check_same_device(kOp, q, v);
  EAT_CHECK(q.shape() == k.shape(), kOp, ": q ", shape_str(q.shape()), " and k ", shape_str(k.shape()),
            " must have the same shape");
  EAT_CHECK(v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == q.size(2), kOp, ": v ",
            shape_str(v.shape()), " must match q ", shape_str(q.shape()), " in batch, time and heads");
  cpu::LinearAttentionShape s{q.size(0), q.size(1), q.size(2), q.size(3), v.size(3)};
  EAT_CHECK(static_cast<int64_t>(decay.size()) == s.H, kOp, ": ", decay.size(), " decay values for ", s.H,
            " heads (q ", shape_str(q.shape()), "); give one lambda per head");
  for (size_t h = 0; h < decay.size(); ++h)
    EAT_CHECK(decay[h] > 0.0 && decay[h] <= 1.0, kOp, ": decay of head ", h, " is ", decay[h],
              "; lambda must lie in (0, 1]");  // also rejects NaN
  if (s0.defined()) {
    check_floating(kOp, s0);
    check_same_dtype(kOp, q, s0);
    check_same_device(kOp, q, s0);
    EAT_CHECK(s0.shape() == Shape({s.B, s.H, s.d, s.e}), kOp, ": initial_state ", shape_str(s0.shape()),
              " must be [B, H, d, e] = ", shape_str(Shape{s.B, s.H, s.d, s.e}), " for q ", shape_str(q.shape()),
              " and v ", shape_str(v.shape()));
  }
  EAT_CHECK(options.block >= 1, kOp, ": block must be >= 1, got ", options.block);
  return s;
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

std::pair<Tensor, Tensor> lightning_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const std::vector<double>& decay, const Tensor& initial_state,
                                              const LinearAttentionOptions& options) {
  const cpu::LinearAttentionShape s = checked_shape(q, k, v, decay, initial_state, options);
  const LinearAttentionImpl impl = options.impl;
  const int64_t block = options.block;
  Tensor o = Tensor::empty_like(v);
  Tensor final_state = Tensor::empty({s.B, s.H, s.d, s.e}, q.dtype(), q.device());
  const bool record = autograd::needs_record({&q, &k, &v, &initial_state});
  // The CPU chunked kernel keeps the state entering every block for its backward, which then
  // runs one sweep instead of two.
  Tensor block_states;
  if (record && impl == LinearAttentionImpl::chunked && q.device() == Device::cpu)
    block_states = Tensor::empty({s.B, s.H, cpu::lightning_block_count(s.T, block), s.d, s.e}, q.dtype());
  dispatch(kOp, q, [&]<typename T>() {
    const T* s0 = data_or_null<T>(initial_state);
    switch (impl) {
      case LinearAttentionImpl::naive:
        cpu::lightning_naive_forward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0, o.data<T>(),
                                        final_state.data<T>());
        break;
      case LinearAttentionImpl::recurrent:
        cpu::lightning_recurrent_forward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0, o.data<T>(),
                                            final_state.data<T>());
        break;
      case LinearAttentionImpl::chunked:
        cpu::lightning_chunked_forward<T>(s, block, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0,
                                          o.data<T>(), final_state.data<T>(), cpu::ChunkedSchedule::automatic,
                                          block_states.defined() ? block_states.data<T>() : nullptr);
        break;
    }
  }, EAT_CUDA([&]<typename T>() {
    // The CUDA kernel is the chunked one whatever `impl` asks for: naive and recurrent are CPU
    // references, and every implementation computes the same function.
    cuda::lightning_chunked_forward<T>(cuda_dims(s), decay.data(), q.data<T>(), k.data<T>(), v.data<T>(),
                                       data_or_null<T>(initial_state), o.data<T>(), final_state.data<T>(),
                                       cuda::compute_stream());
  }));
  if (record) {
    const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
    const bool need_s0 = initial_state.defined() && initial_state.requires_grad();
    Tensor s0 = initial_state.defined() ? initial_state.detach() : Tensor();  // the inter terms of dq need it
    autograd::record(
        kOp, {q, k, v, initial_state}, {o, final_state},
        [s, impl, block, decay, need_q, need_k, need_v, need_s0, q = q.detach(), k = k.detach(), v = v.detach(), s0,
         block_states](const std::vector<Tensor>& g) {
          Tensor dout = autograd::grad_or_zeros(g, 0, {s.B, s.T, s.H, s.e}, q.dtype(), q.device());
          Tensor dfinal = autograd::grad_or_zeros(g, 1, {s.B, s.H, s.d, s.e}, q.dtype(), q.device());
          Tensor dq = need_q ? Tensor::empty_like(q) : Tensor();
          Tensor dk = need_k ? Tensor::empty_like(k) : Tensor();
          Tensor dv = need_v ? Tensor::empty_like(v) : Tensor();
          Tensor ds0 = need_s0 ? Tensor::empty_like(s0) : Tensor();
          dispatch("lightning_attention backward", q, [&]<typename T>() {
            auto out = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
            const T* s0p = data_or_null<T>(s0);
            switch (impl) {
              case LinearAttentionImpl::naive:
                cpu::lightning_naive_backward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0p,
                                                 dout.data<T>(), dfinal.data<T>(), out(dq), out(dk), out(dv), out(ds0));
                break;
              case LinearAttentionImpl::recurrent:
                cpu::lightning_recurrent_backward<T>(s, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0p,
                                                     dout.data<T>(), dfinal.data<T>(), out(dq), out(dk), out(dv),
                                                     out(ds0));
                break;
              case LinearAttentionImpl::chunked:
                cpu::lightning_chunked_backward<T>(s, block, decay.data(), q.data<T>(), k.data<T>(), v.data<T>(), s0p,
                                                   dout.data<T>(), dfinal.data<T>(), out(dq), out(dk), out(dv),
                                                   out(ds0), cpu::ChunkedSchedule::automatic,
                                                   data_or_null<T>(block_states));
                break;
            }
          }, EAT_CUDA([&]<typename T>() {
            auto out = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
            cuda::lightning_chunked_backward<T>(cuda_dims(s), decay.data(), q.data<T>(), k.data<T>(), v.data<T>(),
                                                data_or_null<T>(s0), dout.data<T>(), dfinal.data<T>(), out(dq),
                                                out(dk), out(dv), out(ds0), cuda::compute_stream());
          }));
          return std::vector<Tensor>{dq, dk, dv, ds0};
        });
  }
  return {o, final_state};
}

}  // namespace eat
