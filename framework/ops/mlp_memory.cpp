// mlp_memory: Titans' two-layer MLP memory in the chunked dual form (kernels/mlp_memory.h). The
// forward keeps the states entering every checkpoint_every-th chunk ([B, H, kept, state], in the
// state dtype) for the backward, which recomputes the others.

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/head_inputs.h"
#include "framework/ops/memory_inputs.h"
#include "kernels/mlp_memory.h"

namespace eat {

namespace {

constexpr const char* kOp = "mlp_memory";

// A state tensor (when defined) in the state dtype on q's device, of shape [B, H, rows, cols], or
// [H, rows, cols] where `may_share`.
void check_state(const Tensor& t, const char* name, const Tensor& q, int64_t rows, int64_t cols, bool may_share) {
  if (!t.defined()) return;
  check_floating(kOp, t);
  check_same_device(kOp, q, t);
  const DType want_dtype = memory_state_dtype(q);
  EAT_CHECK(t.dtype() == want_dtype, kOp, ": ", name, " is ", dtype_name(t.dtype()), "; with ", dtype_name(q.dtype()),
            " inputs on ", device_name(q.device()), " the states are ", dtype_name(want_dtype));
  const Shape full{q.size(0), q.size(2), rows, cols}, shared{q.size(2), rows, cols};
  EAT_CHECK(t.shape() == full || (may_share && t.shape() == shared), kOp, ": ", name, " ", shape_str(t.shape()),
            " must be [B, H, ", rows, ", ", cols, "] = ", shape_str(full),
            may_share ? std::string(" (or [H, ...] = ") + shape_str(shared) + ", shared by the batch)" : std::string(),
            " for q ", shape_str(q.shape()));
}

MlpMemoryShape checked_shape(const Tensor& q, const Tensor& k, const Tensor& v, const MemoryGateLogits& gates,
                             const MlpMemoryState& initial, const NeuralMemoryOptions& options) {
  const HeadShape hs = checked_head_inputs(kOp, q, k, v);
  check_memory_gates(kOp, gates, q);
  EAT_CHECK(initial.w1.defined() && initial.w2.defined(), kOp,
            ": the initial weights W1 and W2 are required (a zero memory never learns)");
  EAT_CHECK(initial.w1.dim() >= 1, kOp, ": W1 ", shape_str(initial.w1.shape()), " must be [B, H, d, hidden]");
  const int64_t hidden = initial.w1.size(-1);
  EAT_CHECK(hidden >= 1, kOp, ": the hidden width (W1's last dimension) must be >= 1");
  check_state(initial.w1, "initial W1", q, hs.d, hidden, true);
  check_state(initial.w2, "initial W2", q, hidden, hs.e, true);
  EAT_CHECK(initial.w1.dim() == initial.w2.dim(), kOp, ": the initial W1 ", shape_str(initial.w1.shape()), " and W2 ",
            shape_str(initial.w2.shape()), " must both be per sequence [B, H, ...] or both shared [H, ...]");
  check_state(initial.s1, "initial S1", q, hs.d, hidden, false);
  check_state(initial.s2, "initial S2", q, hidden, hs.e, false);
  check_memory_options(kOp, options);
  return {hs.B, hs.T, hs.H, hs.d, hidden, hs.e, initial.w1.dim() == 3};
}

}  // namespace

MlpMemoryResult mlp_memory(const Tensor& q, const Tensor& k, const Tensor& v, const MemoryGateLogits& gates,
                           const MlpMemoryState& initial, const NeuralMemoryOptions& options) {
  const MlpMemoryShape s = checked_shape(q, k, v, gates, initial, options);
  const MlpMemoryArgs args{options.chunk, options.max_lr,
                           memory_checkpoint_every(s.T, options.chunk, options.checkpoint_chunks)};
  const DType sd = memory_state_dtype(q);
  const Device dev = q.device();
  const Shape w1_shape{s.B, s.H, s.d, s.hidden}, w2_shape{s.B, s.H, s.hidden, s.e};
  Tensor y = Tensor::empty_like(v);
  MlpMemoryState out{Tensor::empty(w1_shape, sd, dev), Tensor::empty(w2_shape, sd, dev), Tensor::empty(w1_shape, sd, dev),
                     Tensor::empty(w2_shape, sd, dev)};
  const int64_t kept = memory_checkpoints(s.T, args.chunk, args.checkpoint_every);
  Tensor checkpoints = Tensor::empty({s.B, s.H, kept, s.state_size()}, sd, dev);
  const Tensor &theta = gates.theta, &eta = gates.eta, &alpha = gates.alpha;
  dispatch(kOp, q, [&]<typename T>() {
    cpu::mlp_memory_forward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), theta.data<T>(), eta.data<T>(),
                               alpha.data<T>(), initial.w1.data<T>(), initial.w2.data<T>(), data_or_null<T>(initial.s1),
                               data_or_null<T>(initial.s2), y.data<T>(), out.w1.data<T>(), out.w2.data<T>(),
                               out.s1.data<T>(), out.s2.data<T>(), checkpoints.data<T>());
  }, EAT_CUDA([&]<typename T>() {
    using S = cuda::MemoryState<T>;
    cuda::mlp_memory_forward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), theta.data<T>(), eta.data<T>(),
                                alpha.data<T>(), initial.w1.data<S>(), initial.w2.data<S>(), data_or_null<S>(initial.s1),
                                data_or_null<S>(initial.s2), y.data<T>(), out.w1.data<S>(), out.w2.data<S>(),
                                out.s1.data<S>(), out.s2.data<S>(), checkpoints.data<S>());
  }));
  const std::vector<Tensor> inputs{q, k, v, theta, eta, alpha, initial.w1, initial.w2, initial.s1, initial.s2};
  if (autograd::needs_record(inputs)) {
    std::vector<bool> need;
    for (const Tensor& t : inputs) need.push_back(t.defined() && t.requires_grad());
    autograd::record(
        kOp, inputs, {y, out.w1, out.w2, out.s1, out.s2},
        [s, args, need, q = q.detach(), k = k.detach(), v = v.detach(), theta = theta.detach(), eta = eta.detach(),
         alpha = alpha.detach(), w1 = initial.w1.detach(), w2 = initial.w2.detach(), checkpoints, w1_shape, w2_shape, sd](const std::vector<Tensor>& g) {
          const Device dev = q.device();
          Tensor dy = autograd::grad_or_zeros(g, 0, Shape{s.B, s.T, s.H, s.e}, q.dtype(), dev);
          Tensor dw1_out = autograd::grad_or_zeros(g, 1, w1_shape, sd, dev);
          Tensor dw2_out = autograd::grad_or_zeros(g, 2, w2_shape, sd, dev);
          Tensor ds1_out = autograd::grad_or_zeros(g, 3, w1_shape, sd, dev);
          Tensor ds2_out = autograd::grad_or_zeros(g, 4, w2_shape, sd, dev);
          std::vector<Tensor> grads{empty_like_if(need[0], q),  empty_like_if(need[1], k),
                                    empty_like_if(need[2], v),  empty_like_if(need[3], theta),
                                    empty_like_if(need[4], eta), empty_like_if(need[5], alpha),
                                    empty_like_if(need[6], w1), empty_like_if(need[7], w2),
                                    need[8] ? Tensor::empty(w1_shape, sd, dev) : Tensor(),
                                    need[9] ? Tensor::empty(w2_shape, sd, dev) : Tensor()};
          auto run = [&]<typename T, typename S>() {
            return [&](auto kernel) {
              kernel(s, args, q.data<T>(), k.data<T>(), v.data<T>(), theta.data<T>(), eta.data<T>(), alpha.data<T>(),
                     checkpoints.data<S>(), dy.data<T>(), dw1_out.data<S>(), dw2_out.data<S>(), ds1_out.data<S>(),
                     ds2_out.data<S>(), data_or_null<T>(grads[0]), data_or_null<T>(grads[1]),
                     data_or_null<T>(grads[2]), data_or_null<T>(grads[3]), data_or_null<T>(grads[4]),
                     data_or_null<T>(grads[5]), data_or_null<S>(grads[6]), data_or_null<S>(grads[7]),
                     data_or_null<S>(grads[8]), data_or_null<S>(grads[9]));
            };
          };
          dispatch("mlp_memory backward", q, [&]<typename T>() {
            run.template operator()<T, T>()(cpu::mlp_memory_backward<T>);
          }, EAT_CUDA([&]<typename T>() {
            run.template operator()<T, cuda::MemoryState<T>>()(cuda::mlp_memory_backward<T>);
          }));
          return grads;
        });
  }
  return {y, out};
}

}  // namespace eat
