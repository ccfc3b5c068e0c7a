// act(a) * b: the SwiGLU (act = SiLU) and SGLU (act = identity) gate.
#include <algorithm>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/joins.h"
#include "framework/ops/linear_gradients.h"
#include "kernels/glu_gate.h"

namespace eat {

Tensor glu_gate(const Tensor& a, const Tensor& b, GateActivation act) {
  check_floating("glu_gate", a);
  check_same_shape("glu_gate", a, b);
  check_same_dtype("glu_gate", a, b);
  check_same_device("glu_gate", a, b);
  const bool silu = act == GateActivation::silu;
  Tensor y = Tensor::empty_like(a);
  EAT_KERNEL("glu_gate", a, glu_gate_forward, silu, a.data<T>(), b.data<T>(), y.data<T>(), a.numel());
  if (autograd::needs_record({&a, &b})) {
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    autograd::record("glu_gate", {a, b}, {y},
                     [a = a.detach(), b = b.detach(), silu, need_a, need_b](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor da = empty_like_if(need_a, a), db = empty_like_if(need_b, b);
                       EAT_KERNEL("glu_gate backward", a, glu_gate_backward, silu, a.data<T>(), b.data<T>(),
                                  g[0].data<T>(), data_or_null<T>(da), data_or_null<T>(db), a.numel());
                       return {da, db};
                     });
  }
  return y;
}

Tensor glu_gate_halves(const Tensor& ab, GateActivation act) {
  check_floating("glu_gate_halves", ab);
  EAT_CHECK(ab.dim() >= 1 && ab.size(-1) % 2 == 0, "glu_gate_halves: the last axis of ", shape_str(ab.shape()),
            " must be even (the gate's half, then the value's)");
  const bool silu = act == GateActivation::silu;
  const int64_t n = ab.size(-1) / 2, rows = ab.numel() / std::max<int64_t>(2 * n, 1);
  Shape shape = ab.shape();
  shape.back() = n;
  Tensor y = Tensor::empty(shape, ab.dtype(), ab.device());
  EAT_KERNEL("glu_gate_halves", ab, glu_gate_halves_forward, silu, ab.data<T>(), y.data<T>(), rows, n);
  if (autograd::needs_record({&ab})) {
    autograd::record("glu_gate_halves", {ab}, {y},
                     [ab = ab.detach(), silu, rows, n](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       // Over ab itself when nothing else holds it (a gated MLP's joined projection
                       // lives for this backward alone): no fresh tensor to allocate and fill.
                       Tensor dab = autograd::reuse_or_new(ab);
                       EAT_KERNEL("glu_gate_halves backward", ab, glu_gate_halves_backward, silu, ab.data<T>(),
                                  g[0].data<T>(), dab.data<T>(), rows, n);
                       return {dab};
                     });
  }
  return y;
}

Tensor linear_glu(const Tensor& x, const Tensor& weight, GateActivation act) {
  const LinearShape s = check_linear("linear_glu", x, weight, Tensor());
  check_same_device("linear_glu", x, weight);
  EAT_CHECK(s.out % 2 == 0, "linear_glu: weight ", shape_str(weight.shape()),
            " must have an even number of rows (the gate's half, then the value's)");
  const bool silu = act == GateActivation::silu;
  const int64_t n = s.out / 2;
  Shape shape = x.shape();
  shape.back() = s.out;
  Tensor ab = Tensor::empty(shape, x.dtype(), x.device());
  shape.back() = n;
  Tensor y = Tensor::empty(shape, x.dtype(), x.device());
  EAT_KERNEL("linear_glu", x, linear_glu_forward, silu, x.data<T>(), weight.data<T>(), ab.data<T>(), y.data<T>(),
             s.rows, n, s.in);
  if (autograd::needs_record({&x, &weight})) {
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
    autograd::record("linear_glu", {x, weight}, {y},
                     [x = x.detach(), w = weight.detach(), ab, silu, need_x, need_w, s, n](const std::vector<Tensor>& g) {
                       // The projection is this closure's alone: its gradient goes over it.
                       Tensor dab = autograd::reuse_or_new(ab);
                       EAT_KERNEL("glu_gate_halves backward", ab, glu_gate_halves_backward, silu, ab.data<T>(),
                                  g[0].data<T>(), dab.data<T>(), s.rows, n);
                       std::vector<Tensor> grads = linear_gradients(dab, x, w, s, need_x, need_w, false);
                       grads.pop_back();  // no bias
                       return grads;
                     });
  }
  return y;
}

}  // namespace eat
