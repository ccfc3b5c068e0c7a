#pragma once
// The input checks shared by the linear-attention ops over heads (lightning_attention,
// taylor_attention) and their state sums: q, k [B, T, H, d] of one shape and v [B, T, H, e], all floating point of one
// dtype on one device, and an optional initial state of the op's own shape.
#include "framework/tensor.h"
#include "kernels/head_shape.h"

namespace eat {

inline HeadShape checked_head_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  for (const Tensor* t : {&q, &k, &v}) {
    check_floating(op, *t);
    check_dim(op, *t, 4, "q, k [B, T, H, d] and v [B, T, H, e]");
  }
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  check_same_device(op, q, k);
  check_same_device(op, q, v);
  EAT_CHECK(q.shape() == k.shape(), op, ": q ", shape_str(q.shape()), " and k ", shape_str(k.shape()),
            " must have the same shape");
  EAT_CHECK(v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == q.size(2), op, ": v ",
            shape_str(v.shape()), " must match q ", shape_str(q.shape()), " in batch, time and heads");
  return {q.size(0), q.size(1), q.size(2), q.size(3), v.size(3)};
}

// The keys and values of a state sum (decayed_state_sum, taylor_state_sum): k [B, T, H, d] and
// v [B, T, H, e], floating point of one dtype on one device.
inline HeadShape checked_key_value_inputs(const char* op, const Tensor& k, const Tensor& v) {
  check_floating(op, k);
  check_dim(op, k, 4, "k [B, T, H, d]");
  check_dim(op, v, 4, "v [B, T, H, e]");
  check_same_dtype(op, k, v);
  check_same_device(op, k, v);
  EAT_CHECK(v.size(0) == k.size(0) && v.size(1) == k.size(1) && v.size(2) == k.size(2), op, ": v ",
            shape_str(v.shape()), " must share B, T, H with k ", shape_str(k.shape()));
  return {k.size(0), k.size(1), k.size(2), k.size(3), v.size(3)};
}

// s0 (when defined) must be on q's device, of shape `want` (`layout` names its axes, e.g.
// "[B, H, d, e]") and of the op's state dtype there (q's dtype unless the op keeps states wider).
inline void check_initial_state(const char* op, const Tensor& s0, const Tensor& q, const Tensor& v, const Shape& want,
                                const char* layout, DType state_dtype) {
  if (!s0.defined()) return;
  check_floating(op, s0);
  if (state_dtype == q.dtype())
    check_same_dtype(op, q, s0);
  else
    EAT_CHECK(s0.dtype() == state_dtype, op, ": initial_state is ", dtype_name(s0.dtype()), "; with ",
              dtype_name(q.dtype()), " inputs on ", device_name(q.device()), " the states are ", dtype_name(state_dtype));
  check_same_device(op, q, s0);
  EAT_CHECK(s0.shape() == want, op, ": initial_state ", shape_str(s0.shape()), " must be ", layout, " = ",
            shape_str(want), " for q ", shape_str(q.shape()), " and v ", shape_str(v.shape()));
}

}  // namespace eat
