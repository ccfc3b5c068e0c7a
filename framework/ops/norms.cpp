// rms_norm (with weight), simple_rms_norm (without, and times a gate), l2_normalize. Per-row
// statistics are saved for the backward (double on the CPU, f32 on the device).
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/row_stats.h"
#include "kernels/norms.h"

namespace eat {

namespace {

Tensor rms_norm_impl(const char* op, const Tensor& x, const Tensor& weight, double eps) {
  check_floating(op, x);
  EAT_CHECK(x.dim() >= 1 && x.size(-1) > 0, op, ": input ", shape_str(x.shape()), " has an empty last dimension");
  EAT_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  if (weight.defined()) {
    check_same_dtype(op, x, weight);
    check_same_device(op, x, weight);
    EAT_CHECK(weight.shape() == Shape{cols}, op, ": weight ", shape_str(weight.shape()), " does not match input ",
              shape_str(x.shape()), " (expected [", cols, "])");
  }
  Tensor y = Tensor::empty_like(x);
  Tensor r = row_stats(rows, x);
  EAT_KERNEL(op, x, rms_norm_forward, x.data<T>(), data_or_null<T>(weight), y.data<T>(), row_stat_data(r), rows, cols,
             eps);
  if (autograd::needs_record({&x, &weight})) {
    bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad();
    autograd::record(op, {x, weight}, {y},
                     [op, x = x.detach(), w = weight.defined() ? weight.detach() : Tensor(), r, rows, cols, need_x,
                      need_w](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       // x's gradient so far (a residual stream's), when there is one to add into.
                       const Tensor so_far = need_x ? autograd::gradient_so_far(0) : Tensor();
                       const bool into = so_far.defined();
                       Tensor dx = into ? so_far : empty_like_if(need_x, x), dw = empty_like_if(need_w, w);
                       EAT_KERNEL(op, x, rms_norm_backward, x.data<T>(), data_or_null<T>(w), row_stat_data(r),
                                  g[0].data<T>(), data_or_null<T>(dx), data_or_null<T>(dw), rows, cols, into);
                       return {dx, dw};
                     });
  }
  return y;
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  EAT_CHECK(weight.defined(), "rms_norm: weight is required (simple_rms_norm has none)");
  return rms_norm_impl("rms_norm", x, weight, eps);
}

Tensor simple_rms_norm(const Tensor& x, double eps) { return rms_norm_impl("simple_rms_norm", x, Tensor(), eps); }

Tensor simple_rms_norm_gate(const Tensor& x, const Tensor& gate, double eps) {
  const char* op = "simple_rms_norm_gate";
  check_floating(op, x);
  check_same_shape(op, x, gate);
  check_same_dtype(op, x, gate);
  check_same_device(op, x, gate);
  EAT_CHECK(x.dim() >= 1 && x.size(-1) > 0, op, ": input ", shape_str(x.shape()), " has an empty last dimension");
  EAT_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty_like(x);
  Tensor r = row_stats(rows, x);
  EAT_KERNEL(op, x, rms_norm_gate_forward, x.data<T>(), gate.data<T>(), y.data<T>(), row_stat_data(r), rows, cols, eps);
  if (autograd::needs_record({&x, &gate})) {
    const bool need_x = x.requires_grad(), need_gate = gate.requires_grad();
    autograd::record(op, {x, gate}, {y},
                     [op, x = x.detach(), u = gate.detach(), r, rows, cols, need_x,
                      need_gate](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       const Tensor so_far = need_x ? autograd::gradient_so_far(0) : Tensor();
                       const bool into = so_far.defined();
                       Tensor dx = into ? so_far : empty_like_if(need_x, x), du = empty_like_if(need_gate, u);
                       EAT_KERNEL(op, x, rms_norm_gate_backward, x.data<T>(), u.data<T>(), row_stat_data(r),
                                  g[0].data<T>(), data_or_null<T>(dx), data_or_null<T>(du), rows, cols, into);
                       return {dx, du};
                     });
  }
  return y;
}

Tensor l2_normalize(const Tensor& x, double eps) {
  check_floating("l2_normalize", x);
  EAT_CHECK(x.dim() >= 1 && x.size(-1) > 0, "l2_normalize: input ", shape_str(x.shape()), " has an empty last dimension");
  EAT_CHECK(eps > 0, "l2_normalize: eps must be positive, got ", eps);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty_like(x);
  Tensor norm = row_stats(rows, x);
  EAT_KERNEL("l2_normalize", x, l2_normalize_forward, x.data<T>(), y.data<T>(), row_stat_data(norm), rows, cols, eps);
  if (autograd::needs_record({&x})) {
    autograd::record("l2_normalize", {x}, {y},
                     [x = x.detach(), norm, rows, cols, eps](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor dx = Tensor::empty_like(x);
                       EAT_KERNEL("l2_normalize backward", x, l2_normalize_backward, x.data<T>(), row_stat_data(norm),
                                  g[0].data<T>(), dx.data<T>(), rows, cols, eps);
                       return {dx};
                     });
  }
  return y;
}

}  // namespace eat
