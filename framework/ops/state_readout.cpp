// decayed_state_readout: o_t = lambda^(t+1) q_t S, the contribution of an incoming state.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/cpu/state_readout.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/state_readout.h"
#include "kernels/cuda/stream.h"
#endif

namespace eat {

Tensor decayed_state_readout(const Tensor& q, const Tensor& state, const std::vector<double>& decay) {
  const char* op = "decayed_state_readout";
  check_floating(op, q);
  check_dim(op, q, 4, "q [B, T, H, d]");
  check_dim(op, state, 4, "state [B, H, d, e]");
  check_same_dtype(op, q, state);
  check_same_device(op, q, state);
  const cpu::LinearAttentionShape s{q.size(0), q.size(1), q.size(2), q.size(3), state.size(3)};
  EAT_CHECK(state.size(0) == s.B && state.size(1) == s.H && state.size(2) == s.d, op, ": state ", shape_str(state.shape()),
            " does not match q ", shape_str(q.shape()), " (expected [", s.B, ", ", s.H, ", ", s.d, ", e])");
  EAT_CHECK(static_cast<int64_t>(decay.size()) == s.H, op, ": ", decay.size(), " decay values for ", s.H, " heads");
  for (double l : decay) EAT_CHECK(l > 0 && l <= 1, op, ": decay ", l, " is outside (0, 1]");
  Tensor o = Tensor::empty({s.B, s.T, s.H, s.e}, q.dtype(), q.device());
  dispatch(
      op, q, [&]<typename T>() { cpu::state_readout_forward<T>(s, decay, q.data<T>(), state.data<T>(), o.data<T>()); },
      EAT_CUDA([&]<typename T>() {
        cuda::state_readout_forward<T>({s.B, s.T, s.H, s.d, s.e}, decay.data(), q.data<T>(), state.data<T>(),
                                       o.data<T>(), cuda::compute_stream());
      }));
  if (autograd::needs_record({&q, &state})) {
    bool need_q = q.requires_grad(), need_s = state.requires_grad();
    autograd::record(op, {q, state}, {o},
                     [s, decay, q = q.detach(), st = state.detach(), need_q, need_s](const std::vector<Tensor>& g) {
                       Tensor dq = need_q ? Tensor::empty_like(q) : Tensor();
                       Tensor ds = need_s ? Tensor::empty_like(st) : Tensor();
                       dispatch(
                           "decayed_state_readout backward", q,
                           [&]<typename T>() {
                             cpu::state_readout_backward<T>(s, decay, q.data<T>(), st.data<T>(), g[0].data<T>(),
                                                            need_q ? dq.data<T>() : nullptr,
                                                            need_s ? ds.data<T>() : nullptr);
                           },
                           EAT_CUDA([&]<typename T>() {
                             cuda::state_readout_backward<T>({s.B, s.T, s.H, s.d, s.e}, decay.data(), q.data<T>(),
                                                             st.data<T>(), g[0].data<T>(),
                                                             need_q ? dq.data<T>() : nullptr,
                                                             need_s ? ds.data<T>() : nullptr, cuda::compute_stream());
                           }));
                       return std::vector<Tensor>{dq, ds};
                     });
  }
  return o;
}

}  // namespace eat
