// act(a) * b: the SwiGLU (act = SiLU) and SGLU (act = identity) gate.
#include <algorithm>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/joins.h"
#include "framework/ops/linear_gradients.h"
#include "kernels/glu_gate.h"
#include "kernels/matmul.h"

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

Tensor gated_mlp(const Tensor& x, const Tensor& gate_up, const Tensor& down, const Tensor& residual,
                 GateActivation act) {
  const LinearShape up = check_linear("gated_mlp", x, gate_up, Tensor());
  check_same_device("gated_mlp", x, gate_up);
  EAT_CHECK(up.out % 2 == 0, "gated_mlp: gate_up ", shape_str(gate_up.shape()),
            " must have an even number of rows (the gate's half, then the value's)");
  const bool silu = act == GateActivation::silu;
  const int64_t n = up.out / 2;
  Shape shape = x.shape();
  shape.back() = n;
  Tensor h = Tensor::empty(shape, x.dtype(), x.device());
  const LinearShape dn = check_linear("gated_mlp", h, down, Tensor());
  check_same_device("gated_mlp", x, down);
  shape.back() = dn.out;
  check_residual("gated_mlp", x, residual, shape);
  shape.back() = up.out;
  Tensor ab = Tensor::empty(shape, x.dtype(), x.device());
  shape.back() = dn.out;
  Tensor y = Tensor::empty(shape, x.dtype(), x.device());
  // The projection and its gate (made on the product's finished rows where the CPU's packed GEMM
  // runs it), then the down projection onto the residual.
  dispatch_backend("gated_mlp", x, [&]<Backend B, typename T>() {
    EAT_ON(B, linear_glu_forward, silu, x.data<T>(), gate_up.data<T>(), ab.data<T>(), h.data<T>(), up.rows, n, up.in);
    if (residual.defined())
      EAT_ON(B, gemm_onto, h.data<T>(), down.data<T>(), residual.data<T>(), y.data<T>(), dn.rows, dn.out, dn.in, true);
    else
      EAT_ON(B, gemm, h.data<T>(), down.data<T>(), y.data<T>(), dn.rows, dn.out, dn.in, false, true, false);
  });
  if (autograd::needs_record({&x, &gate_up, &down, &residual})) {
    const bool need_x = x.requires_grad(), need_up = gate_up.requires_grad(), need_down = down.requires_grad();
    const bool need_r = residual.defined() && residual.requires_grad();
    autograd::record(
        "gated_mlp", {x, gate_up, down, residual}, {y},
        [x = x.detach(), w_up = gate_up.detach(), w_down = down.detach(), ab, h, silu, up, dn, n, need_x, need_up,
         need_down, need_r](const std::vector<Tensor>& g) {
          const Tensor& dy = g[0];
          // The down projection's weight gradient dy^T h, and then h's storage, which only this
          // closure holds, takes dh (scratch: the gate's backward is made from its finished rows).
          Tensor d_down = empty_like_if(need_down, w_down);
          if (need_down)
            dispatch_backend("gated_mlp backward", x, [&]<Backend B, typename T>() {
              EAT_ON(B, gemm, dy.data<T>(), h.data<T>(), d_down.data<T>(), dn.out, dn.in, dn.rows, true, false, false);
            });
          std::vector<Tensor> grads = {Tensor(), Tensor(), d_down, need_r ? dy : Tensor()};
          if (!need_x && !need_up) return grads;
          Tensor dh = autograd::reuse_or_new(h), dab = autograd::reuse_or_new(ab);
          EAT_KERNEL("gated_mlp backward", x, glu_down_backward, silu, dy.data<T>(), w_down.data<T>(), ab.data<T>(),
                     dh.data<T>(), dab.data<T>(), dn.rows, n, dn.out);
          const std::vector<Tensor> up_grads = linear_gradients(dab, x, w_up, up, need_x, need_up, false);
          grads[0] = up_grads[0];
          grads[1] = up_grads[1];
          return grads;
        });
  }
  return y;
}

}  // namespace eat
