// attention: softmax attention through the naive reference or the tiled kernel.
#include <cmath>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/cpu/attention.h"

namespace eat {

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  for (const Tensor* t : {&q, &k, &v}) {
    check_floating("attention", *t);
    check_dim("attention", *t, 4, "q, k, v [B, T, H, d]");
  }
  check_same_dtype("attention", q, k);
  check_same_dtype("attention", q, v);
  check_same_device("attention", q, k);
  check_same_device("attention", q, v);
  EAT_CHECK(q.shape() == k.shape(), "attention: q ", shape_str(q.shape()), " and k ", shape_str(k.shape()),
            " must have the same shape");
  EAT_CHECK(v.size(0) == q.size(0) && v.size(1) == q.size(1) && v.size(2) == q.size(2), "attention: v ",
            shape_str(v.shape()), " must match q ", shape_str(q.shape()), " in batch, time and heads");
  EAT_CHECK(options.window_left >= -1, "attention: window_left must be -1 (none) or >= 0, got ", options.window_left);
  EAT_CHECK(options.causal || options.window_left < 0, "attention: a sliding window (window_left = ", options.window_left,
            ") needs causal = true");
  cpu::AttentionShape s{q.size(0), q.size(1), q.size(2), q.size(3), v.size(3), options.causal, options.window_left,
                        options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(3))))};
  const bool tiled = options.impl == AttentionImpl::tiled;
  Tensor o = Tensor::empty_like(v);
  Tensor lse = tiled ? Tensor::empty({s.B, s.H, s.T}, q.dtype()) : Tensor();
  dispatch("attention", q, [&]<typename T>() {
    if (tiled) cpu::attention_tiled_forward<T>(s, q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(), lse.data<T>());
    else cpu::attention_naive_forward<T>(s, q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>());
  });
  if (autograd::needs_record({&q, &k, &v})) {
    autograd::record("attention", {q, k, v}, {o},
                     [s, tiled, q = q.detach(), k = k.detach(), v = v.detach(), o = o.detach(), lse](const std::vector<Tensor>& g) {
                       Tensor dq = Tensor::empty_like(q), dk = Tensor::empty_like(k), dv = Tensor::empty_like(v);
                       dispatch("attention backward", q, [&]<typename T>() {
                         if (tiled)
                           cpu::attention_tiled_backward<T>(s, q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(), lse.data<T>(),
                                                            g[0].data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>());
                         else
                           cpu::attention_naive_backward<T>(s, q.data<T>(), k.data<T>(), v.data<T>(), g[0].data<T>(),
                                                            dq.data<T>(), dk.data<T>(), dv.data<T>());
                       });
                       return std::vector<Tensor>{dq, dk, dv};
                     });
  }
  return o;
}

}  // namespace eat
