// taylor_attention: BASED's Taylor linear attention through the parallel (quadratic), chunked or
// recurrent kernel (kernels/taylor_attention.h); on CUDA the chunked one. The forward keeps the
// denominators Z + eps (RowStat precision: f64 on the CPU, f32 on CUDA) and y for the backward of
// the normalised variant. taylor_state_sum: the final state alone, from a zero start
// (kernels/taylor_state_sum.h). taylor_attention_sums and taylor_state_readout: the attention split
// at its incoming state for sequence parallelism (kernels/taylor_attention.h, the sums kernels;
// kernels/taylor_state_readout.h).

#include <tuple>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/head_inputs.h"
#include "kernels/taylor_attention.h"
#include "kernels/taylor_state_readout.h"
#include "kernels/taylor_state_sum.h"

namespace eat {

namespace {

constexpr const char* kOp = "taylor_attention";

const char* impl_name(TaylorImpl impl) {
  switch (impl) {
    case TaylorImpl::parallel: return "parallel";
    case TaylorImpl::chunked: return "chunked";
    case TaylorImpl::recurrent: return "recurrent";
  }
  return "?";
}

// States stay f32 on CUDA whatever the storage (kernels/taylor_attention.h, TaylorState).
DType state_dtype(const Tensor& q) { return q.device() == Device::cpu ? q.dtype() : DType::f32; }

Shape state_shape(const HeadShape& s) { return {s.B, s.H, taylor_feature_dim(s.d), s.e + 1}; }
Shape sums_shape(const HeadShape& s) { return {s.B, s.T, s.H, s.e + 1}; }

// The normalised variant's saved Z + eps per row [B, T, H] (RowStat: f64 on the CPU, f32 on
// CUDA); undefined without the denominator.
Tensor denominators_if(bool normalize, const HeadShape& s, const Tensor& q) {
  if (!normalize) return Tensor();
  return Tensor::empty({s.B, s.T, s.H}, q.device() == Device::cpu ? DType::f64 : DType::f32, q.device());
}

HeadShape checked_shape(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                        const TaylorOptions& options) {
  const HeadShape s = checked_head_inputs(kOp, q, k, v);
  check_initial_state(kOp, s0, q, v, state_shape(s), "[B, H, D', e + 1]", state_dtype(q));
  EAT_CHECK(options.block >= 1, kOp, ": block must be >= 1, got ", options.block);
  EAT_CHECK(options.eps >= 0.0, kOp, ": eps must be >= 0, got ", options.eps);
  return s;
}

// CUDA runs the chunked form; the others are CPU references (the same function).
void check_cuda_form(TaylorImpl impl) {
  EAT_CHECK(impl == TaylorImpl::chunked, kOp, ": the ", impl_name(impl),
            " form has no CUDA kernel; use the chunked form on CUDA, or run on the CPU");
}

// A state tensor's data as the kernel's TaylorState<T>* (T on the CPU, f32 on CUDA), or its
// RowStat*: converts to whichever the kernel takes, and the tensor's dtype check catches a
// mismatch. Null for an undefined tensor.
struct StateData {
  const Tensor& t;
  template <typename S>
  operator S*() const { return data_or_null<S>(t); }
  template <typename S>
  operator const S*() const { return data_or_null<S>(t); }
};

}  // namespace

int64_t taylor_state_rows(int64_t feature_dim) { return taylor_feature_dim(feature_dim); }

std::pair<Tensor, Tensor> taylor_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& initial_state, const TaylorOptions& options) {
  const HeadShape s = checked_shape(q, k, v, initial_state, options);
  const TaylorKernelArgs args{options.block, options.normalize, options.eps};
  const TaylorImpl impl = options.impl;
  Tensor y = Tensor::empty_like(v);
  Tensor final_state = Tensor::empty(state_shape(s), state_dtype(q), q.device());
  Tensor denominator = denominators_if(options.normalize, s, q);
  dispatch(kOp, q, [&]<typename T>() {
    auto* den = data_or_null<cpu::RowStat>(denominator);
    const T* s0 = data_or_null<T>(initial_state);
    switch (impl) {
      case TaylorImpl::parallel:
        cpu::taylor_parallel_forward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), s0, y.data<T>(),
                                        final_state.data<T>(), den);
        break;
      case TaylorImpl::chunked:
        cpu::taylor_chunked_forward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), s0, y.data<T>(),
                                       final_state.data<T>(), den);
        break;
      case TaylorImpl::recurrent:
        cpu::taylor_recurrent_forward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), s0, y.data<T>(),
                                         final_state.data<T>(), den);
        break;
    }
  }, EAT_CUDA([&]<typename T>() {
    check_cuda_form(impl);
    cuda::taylor_chunked_forward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(),
                                    data_or_null<cuda::TaylorState<T>>(initial_state), y.data<T>(),
                                    final_state.data<cuda::TaylorState<T>>(), data_or_null<cuda::RowStat>(denominator));
  }));
  if (autograd::needs_record({&q, &k, &v, &initial_state})) {
    const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
    const bool need_s0 = initial_state.defined() && initial_state.requires_grad();
    Tensor s0 = initial_state.defined() ? initial_state.detach() : Tensor();
    Tensor y_saved = options.normalize ? y.detach() : Tensor();
    autograd::record(
        kOp, {q, k, v, initial_state}, {y, final_state},
        [s, args, impl, need_q, need_k, need_v, need_s0, q = q.detach(), k = k.detach(), v = v.detach(), s0, y_saved,
         denominator](const std::vector<Tensor>& g) {
          Tensor dy = autograd::grad_or_zeros(g, 0, s.v(), q.dtype(), q.device());
          Tensor dfinal = autograd::grad_or_zeros(g, 1, state_shape(s), state_dtype(q), q.device());
          Tensor dq = empty_like_if(need_q, q), dk = empty_like_if(need_k, k), dv = empty_like_if(need_v, v);
          Tensor ds0 = empty_like_if(need_s0, s0);
          dispatch("taylor_attention backward", q, [&]<typename T>() {
            const T *s0p = data_or_null<T>(s0), *yp = data_or_null<T>(y_saved);
            const auto* den = data_or_null<cpu::RowStat>(denominator);
            T *dqp = data_or_null<T>(dq), *dkp = data_or_null<T>(dk), *dvp = data_or_null<T>(dv);
            T* ds0p = data_or_null<T>(ds0);
            switch (impl) {
              case TaylorImpl::parallel:
                cpu::taylor_parallel_backward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), s0p, yp, den,
                                                 dy.data<T>(), dfinal.data<T>(), dqp, dkp, dvp, ds0p);
                break;
              case TaylorImpl::chunked:
                cpu::taylor_chunked_backward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), s0p, yp, den,
                                                dy.data<T>(), dfinal.data<T>(), dqp, dkp, dvp, ds0p);
                break;
              case TaylorImpl::recurrent:
                cpu::taylor_recurrent_backward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), s0p, yp, den,
                                                  dy.data<T>(), dfinal.data<T>(), dqp, dkp, dvp, ds0p);
                break;
            }
          }, EAT_CUDA([&]<typename T>() {
            using S = cuda::TaylorState<T>;
            cuda::taylor_chunked_backward<T>(s, args, q.data<T>(), k.data<T>(), v.data<T>(), data_or_null<S>(s0),
                                             data_or_null<T>(y_saved), data_or_null<cuda::RowStat>(denominator),
                                             dy.data<T>(), dfinal.data<S>(), data_or_null<T>(dq), data_or_null<T>(dk),
                                             data_or_null<T>(dv), data_or_null<S>(ds0));
          }));
          return std::vector<Tensor>{dq, dk, dv, ds0};
        });
  }
  return {y, final_state};
}

Tensor taylor_state_sum(const Tensor& k, const Tensor& v) {
  const char* op = "taylor_state_sum";
  const HeadShape s = checked_key_value_inputs(op, k, v);
  Tensor state = Tensor::empty(state_shape(s), state_dtype(k), k.device());
  EAT_KERNEL(op, k, taylor_state_sum_forward, s, k.data<T>(), v.data<T>(), StateData{state});
  if (autograd::needs_record({&k, &v})) {
    const bool need_k = k.requires_grad(), need_v = v.requires_grad();
    autograd::record(op, {k, v}, {state}, [s, k = k.detach(), v = v.detach(), need_k, need_v](const std::vector<Tensor>& g) {
      Tensor dk = empty_like_if(need_k, k), dv = empty_like_if(need_v, v);
      EAT_KERNEL("taylor_state_sum backward", k, taylor_state_sum_backward, s, k.data<T>(), v.data<T>(),
                 StateData{g[0]}, data_or_null<T>(dk), data_or_null<T>(dv));
      return std::vector<Tensor>{dk, dv};
    });
  }
  return state;
}

Tensor taylor_attention_sums(const Tensor& q, const Tensor& k, const Tensor& v, const TaylorOptions& options) {
  const char* op = "taylor_attention_sums";
  const HeadShape s = checked_shape(q, k, v, Tensor(), options);
  const TaylorKernelArgs args{options.block, options.normalize, options.eps};
  Tensor sums = Tensor::empty(sums_shape(s), state_dtype(q), q.device());
  EAT_KERNEL(op, q, taylor_chunked_sums_forward, s, args, q.data<T>(), k.data<T>(), v.data<T>(), StateData{sums});
  if (autograd::needs_record({&q, &k, &v})) {
    const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
    autograd::record(op, {q, k, v}, {sums},
                     [s, args, need_q, need_k, need_v, q = q.detach(), k = k.detach(), v = v.detach()](
                         const std::vector<Tensor>& g) {
                       Tensor dsums = autograd::grad_or_zeros(g, 0, sums_shape(s), state_dtype(q), q.device());
                       Tensor dq = empty_like_if(need_q, q), dk = empty_like_if(need_k, k), dv = empty_like_if(need_v, v);
                       EAT_KERNEL("taylor_attention_sums backward", q, taylor_chunked_sums_backward, s, args,
                                  q.data<T>(), k.data<T>(), v.data<T>(), StateData{dsums}, data_or_null<T>(dq),
                                  data_or_null<T>(dk), data_or_null<T>(dv));
                       return std::vector<Tensor>{dq, dk, dv};
                     });
  }
  return sums;
}

Tensor taylor_state_readout(const Tensor& q, const Tensor& state, const Tensor& sums, const TaylorOptions& options) {
  const char* op = "taylor_state_readout";
  check_floating(op, q);
  check_dim(op, q, 4, "q [B, T, H, f]");
  EAT_CHECK(state.defined() && sums.defined(), op, ": needs the state and the sums");
  check_dim(op, state, 4, "state [B, H, D', e + 1]");
  const HeadShape s{q.size(0), q.size(1), q.size(2), q.size(3), state.size(3) - 1};
  for (const auto& [t, want, layout] : {std::tuple{&state, state_shape(s), "state [B, H, D', e + 1]"},
                                        std::tuple{&sums, sums_shape(s), "sums [B, T, H, e + 1]"}}) {
    check_same_device(op, q, *t);
    EAT_CHECK(t->shape() == want, op, ": ", layout, " must be ", shape_str(want), " for q ", shape_str(q.shape()),
              ", got ", shape_str(t->shape()));
    EAT_CHECK(t->dtype() == state_dtype(q), op, ": with ", dtype_name(q.dtype()), " q on ", device_name(q.device()),
              " the state and sums are ", dtype_name(state_dtype(q)), ", got ", dtype_name(t->dtype()));
  }
  EAT_CHECK(s.e >= 1, op, ": the state needs at least one value column besides the normaliser");
  EAT_CHECK(options.eps >= 0.0, op, ": eps must be >= 0, got ", options.eps);
  const TaylorKernelArgs args{options.block, options.normalize, options.eps};
  Tensor y = Tensor::empty({s.B, s.T, s.H, s.e}, q.dtype(), q.device());
  Tensor denominator = denominators_if(options.normalize, s, q);
  EAT_KERNEL(op, q, taylor_state_readout_forward, s, args, q.data<T>(), StateData{state}, StateData{sums}, y.data<T>(),
             StateData{denominator});
  if (autograd::needs_record({&q, &state, &sums})) {
    const bool need_q = q.requires_grad(), need_state = state.requires_grad(), need_sums = sums.requires_grad();
    Tensor y_saved = options.normalize ? y.detach() : Tensor();
    autograd::record(
        op, {q, state, sums}, {y},
        [s, args, need_q, need_state, need_sums, q = q.detach(), state = state.detach(), y_saved,
         denominator](const std::vector<Tensor>& g) {
          Tensor dy = autograd::grad_or_zeros(g, 0, {s.B, s.T, s.H, s.e}, q.dtype(), q.device());
          Tensor dq = empty_like_if(need_q, q), dstate = empty_like_if(need_state, state);
          Tensor dsums = Tensor::empty(sums_shape(s), state.dtype(), q.device());  // the kernel's G, always
          EAT_KERNEL("taylor_state_readout backward", q, taylor_state_readout_backward, s, args, q.data<T>(),
                     StateData{state}, data_or_null<T>(y_saved), StateData{denominator}, dy.data<T>(),
                     StateData{dsums}, data_or_null<T>(dq), StateData{dstate});
          return std::vector<Tensor>{dq, dstate, need_sums ? dsums : Tensor()};
        });
  }
  return y;
}

}  // namespace eat
