// linear_memory: Titans' linear neural memory through its chunked kernel
// (kernels/linear_memory.h). The forward keeps the states at every checkpoint_every-th chunk
// boundary (in the state dtype: q's on the CPU, f32 on CUDA) for the backward, which recomputes
// the chunk-start states between them.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/head_inputs.h"
#include "framework/ops/memory_inputs.h"
#include "kernels/linear_memory.h"

namespace eat {

namespace {

constexpr const char* kOp = "linear_memory";

// An initial state (W or S) is undefined, [B, H, d, e] or [H, d, e] (shared); returns whether shared.
bool check_initial(const char* name, const Tensor& x, const Tensor& q, const HeadShape& s) {
  if (!x.defined()) return false;
  check_floating(kOp, x);
  check_same_device(kOp, q, x);
  EAT_CHECK(x.dtype() == memory_state_dtype(q), kOp, ": the initial ", name, " is ", dtype_name(x.dtype()), "; with ",
            dtype_name(q.dtype()), " inputs on ", device_name(q.device()), " the states are ",
            dtype_name(memory_state_dtype(q)));
  const Shape per_sequence = s.state(), shared{s.H, s.d, s.e};
  EAT_CHECK(x.shape() == per_sequence || x.shape() == shared, kOp, ": the initial ", name, " ", shape_str(x.shape()),
            " must be [B, H, d, e] = ", shape_str(per_sequence), " or [H, d, e] = ", shape_str(shared), " for q ",
            shape_str(q.shape()), " and v [.., e = ", s.e, "]");
  return x.dim() == 3;
}

}  // namespace

LinearMemoryResult linear_memory(const Tensor& q, const Tensor& k, const Tensor& v, const MemoryGateLogits& gates,
                                 const LinearMemoryState& initial, const NeuralMemoryOptions& options) {
  const HeadShape s = checked_head_inputs(kOp, q, k, v);
  check_memory_gates(kOp, gates, q);
  check_memory_options(kOp, options);
  LinearMemoryArgs args;
  args.chunk = options.chunk;
  args.max_lr = options.max_lr;
  args.checkpoint_every = memory_checkpoint_every(s.T, options.chunk, options.checkpoint_chunks);
  args.w0_shared = check_initial("W", initial.w, q, s);
  args.s0_shared = check_initial("S", initial.s, q, s);

  const DType sd = memory_state_dtype(q);
  Tensor y = Tensor::empty_like(v);
  Tensor w_final = Tensor::empty(s.state(), sd, q.device()), s_final = Tensor::empty(s.state(), sd, q.device());
  Tensor kept = Tensor::empty({s.B, s.H, memory_checkpoints(s.T, args.chunk, args.checkpoint_every), 2, s.d, s.e}, sd,
                              q.device());
  const Tensor &th = gates.theta, &et = gates.eta, &al = gates.alpha, &w0 = initial.w, &s0 = initial.s;
  dispatch(kOp, q, [&]<typename T>() {
    cpu::linear_memory_forward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), th.data<T>(), et.data<T>(),
                                  al.data<T>(), data_or_null<T>(w0), data_or_null<T>(s0), y.data<T>(),
                                  w_final.data<T>(), s_final.data<T>(), kept.data<T>());
  }, EAT_CUDA([&]<typename T>() {
    using S = cuda::MemoryState<T>;
    cuda::linear_memory_forward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), th.data<T>(), et.data<T>(),
                                   al.data<T>(), data_or_null<S>(w0), data_or_null<S>(s0), y.data<T>(),
                                   w_final.data<S>(), s_final.data<S>(), kept.data<S>());
  }));
  if (autograd::needs_record({&q, &k, &v, &th, &et, &al, &w0, &s0})) {
    const std::vector<Tensor> inputs{q, k, v, th, et, al, w0, s0};
    std::vector<bool> need;
    for (const Tensor& t : inputs) need.push_back(t.defined() && t.requires_grad());
    std::vector<Tensor> saved;
    for (const Tensor& t : inputs) saved.push_back(t.defined() ? t.detach() : Tensor());
    autograd::record(kOp, inputs, {y, w_final, s_final}, [s, args, need, saved, kept](const std::vector<Tensor>& g) {
      const Tensor &q = saved[0], &k = saved[1], &v = saved[2], &th = saved[3], &et = saved[4], &al = saved[5];
      const DType sd = memory_state_dtype(q);
      Tensor dy = autograd::grad_or_zeros(g, 0, s.v(), q.dtype(), q.device());
      Tensor dwf = autograd::grad_or_zeros(g, 1, s.state(), sd, q.device());
      Tensor dsf = autograd::grad_or_zeros(g, 2, s.state(), sd, q.device());
      std::vector<Tensor> d;
      for (size_t i = 0; i < saved.size(); ++i) d.push_back(empty_like_if(need[i], saved[i]));
      dispatch("linear_memory backward", q, [&]<typename T>() {
        cpu::linear_memory_backward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), th.data<T>(), et.data<T>(),
                                       al.data<T>(), kept.data<T>(), dy.data<T>(), dwf.data<T>(), dsf.data<T>(),
                                       data_or_null<T>(d[0]), data_or_null<T>(d[1]), data_or_null<T>(d[2]),
                                       data_or_null<T>(d[3]), data_or_null<T>(d[4]), data_or_null<T>(d[5]),
                                       data_or_null<T>(d[6]), data_or_null<T>(d[7]));
      }, EAT_CUDA([&]<typename T>() {
        using S = cuda::MemoryState<T>;
        cuda::linear_memory_backward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), th.data<T>(), et.data<T>(),
                                        al.data<T>(), kept.data<S>(), dy.data<T>(), dwf.data<S>(), dsf.data<S>(),
                                        data_or_null<T>(d[0]), data_or_null<T>(d[1]), data_or_null<T>(d[2]),
                                        data_or_null<T>(d[3]), data_or_null<T>(d[4]), data_or_null<T>(d[5]),
                                        data_or_null<S>(d[6]), data_or_null<S>(d[7]));
      }));
      return d;
    });
  }
  return {y, {w_final, s_final}};
}

}  // namespace eat
