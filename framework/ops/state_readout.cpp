// decayed_state_readout: o_t = lambda^(t+1) q_t S, the contribution of an incoming state, and
// decayed_state_sum: the state a segment leaves from a zero start.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/head_inputs.h"
#include "kernels/state_readout.h"

namespace eat {

namespace {

void check_decay(const char* op, const std::vector<double>& decay, int64_t heads) {
  EAT_CHECK(static_cast<int64_t>(decay.size()) == heads, op, ": ", decay.size(), " decay values for ", heads, " heads");
  for (double l : decay) EAT_CHECK(l > 0 && l <= 1, op, ": decay ", l, " is outside (0, 1]");
}

}  // namespace

Tensor decayed_state_readout(const Tensor& q, const Tensor& state, const std::vector<double>& decay) {
  const char* op = "decayed_state_readout";
  check_floating(op, q);
  check_dim(op, q, 4, "q [B, T, H, d]");
  check_dim(op, state, 4, "state [B, H, d, e]");
  check_same_dtype(op, q, state);
  check_same_device(op, q, state);
  const HeadShape s{q.size(0), q.size(1), q.size(2), q.size(3), state.size(3)};
  EAT_CHECK(state.size(0) == s.B && state.size(1) == s.H && state.size(2) == s.d, op, ": state ", shape_str(state.shape()),
            " does not match q ", shape_str(q.shape()), " (expected [", s.B, ", ", s.H, ", ", s.d, ", e])");
  check_decay(op, decay, s.H);
  Tensor o = Tensor::empty(s.v(), q.dtype(), q.device());
  EAT_KERNEL(op, q, state_readout_forward, s, decay.data(), q.data<T>(), state.data<T>(), o.data<T>());
  if (autograd::needs_record({&q, &state})) {
    bool need_q = q.requires_grad(), need_s = state.requires_grad();
    autograd::record(op, {q, state}, {o},
                     [s, decay, q = q.detach(), st = state.detach(), need_q, need_s](const std::vector<Tensor>& g) {
                       Tensor dq = empty_like_if(need_q, q), ds = empty_like_if(need_s, st);
                       EAT_KERNEL("decayed_state_readout backward", q, state_readout_backward, s, decay.data(),
                                  q.data<T>(), st.data<T>(), g[0].data<T>(), data_or_null<T>(dq), data_or_null<T>(ds));
                       return std::vector<Tensor>{dq, ds};
                     });
  }
  return o;
}

Tensor decayed_state_sum(const Tensor& k, const Tensor& v, const std::vector<double>& decay) {
  const char* op = "decayed_state_sum";
  const HeadShape s = checked_key_value_inputs(op, k, v);
  check_decay(op, decay, s.H);
  Tensor state = Tensor::empty(s.state(), k.dtype(), k.device());
  EAT_KERNEL(op, k, state_sum_forward, s, decay.data(), k.data<T>(), v.data<T>(), state.data<T>());
  if (autograd::needs_record({&k, &v})) {
    bool need_k = k.requires_grad(), need_v = v.requires_grad();
    autograd::record(op, {k, v}, {state},
                     [s, decay, k = k.detach(), v = v.detach(), need_k, need_v](const std::vector<Tensor>& g) {
                       Tensor dk = empty_like_if(need_k, k), dv = empty_like_if(need_v, v);
                       EAT_KERNEL("decayed_state_sum backward", k, state_sum_backward, s, decay.data(), k.data<T>(),
                                  v.data<T>(), g[0].data<T>(), data_or_null<T>(dk), data_or_null<T>(dv));
                       return std::vector<Tensor>{dk, dv};
                     });
  }
  return state;
}

}  // namespace eat
