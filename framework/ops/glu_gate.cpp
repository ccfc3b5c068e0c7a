// act(a) * b: the SwiGLU (act = SiLU) and SGLU (act = identity) gate.
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/cpu/glu_gate.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/glu_gate.h"
#include "runtime/cuda/stream.h"
#endif

namespace eat {

Tensor glu_gate(const Tensor& a, const Tensor& b, GateActivation act) {
  check_floating("glu_gate", a);
  check_same_shape("glu_gate", a, b);
  check_same_dtype("glu_gate", a, b);
  check_same_device("glu_gate", a, b);
  const bool silu = act == GateActivation::silu;
  Tensor y = Tensor::empty_like(a);
  dispatch(
      "glu_gate", a,
      [&]<typename T>() { cpu::glu_gate_forward<T>(silu, a.data<T>(), b.data<T>(), y.data<T>(), a.numel()); },
      EAT_CUDA([&]<typename T>() {
        cuda::glu_gate_forward<T>(silu, a.data<T>(), b.data<T>(), y.data<T>(), a.numel(), cuda::compute_stream());
      }));
  if (autograd::needs_record({&a, &b})) {
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    autograd::record("glu_gate", {a, b}, {y},
                     [a = a.detach(), b = b.detach(), silu, need_a, need_b](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor da = need_a ? Tensor::empty_like(a) : Tensor();
                       Tensor db = need_b ? Tensor::empty_like(b) : Tensor();
                       dispatch(
                           "glu_gate backward", a,
                           [&]<typename T>() {
                             cpu::glu_gate_backward<T>(silu, a.data<T>(), b.data<T>(), g[0].data<T>(),
                                                       need_a ? da.data<T>() : nullptr, need_b ? db.data<T>() : nullptr,
                                                       a.numel());
                           },
                           EAT_CUDA([&]<typename T>() {
                             cuda::glu_gate_backward<T>(silu, a.data<T>(), b.data<T>(), g[0].data<T>(),
                                                        need_a ? da.data<T>() : nullptr, need_b ? db.data<T>() : nullptr,
                                                        a.numel(), cuda::compute_stream());
                           }));
                       return {da, db};
                     });
  }
  return y;
}

}  // namespace eat
