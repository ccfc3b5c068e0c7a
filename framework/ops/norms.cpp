// rms_norm (with weight), simple_rms_norm (without), l2_normalize. Per-row statistics are saved for
// the backward (double on the CPU, f32 on the device).
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/row_stats.h"
#include "kernels/cpu/norms.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/norms.h"
#include "runtime/cuda/stream.h"
#endif

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
  dispatch(
      op, x,
      [&]<typename T>() {
        cpu::rms_norm_forward<T>(x.data<T>(), weight.defined() ? weight.data<T>() : nullptr, y.data<T>(), r.data<double>(),
                                 rows, cols, eps);
      },
      EAT_CUDA([&]<typename T>() {
        cuda::rms_norm_forward<T>(x.data<T>(), weight.defined() ? weight.data<T>() : nullptr, y.data<T>(), r.data<float>(),
                                  rows, cols, static_cast<float>(eps), cuda::compute_stream());
      }));
  if (autograd::needs_record({&x, &weight})) {
    bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad();
    autograd::record(op, {x, weight}, {y},
                     [op, x = x.detach(), w = weight.defined() ? weight.detach() : Tensor(), r, rows, cols, need_x,
                      need_w](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor dx = need_x ? Tensor::empty_like(x) : Tensor();
                       Tensor dw = need_w ? Tensor::empty_like(w) : Tensor();
                       dispatch(
                           op, x,
                           [&]<typename T>() {
                             cpu::rms_norm_backward<T>(x.data<T>(), w.defined() ? w.data<T>() : nullptr, r.data<double>(),
                                                       g[0].data<T>(), need_x ? dx.data<T>() : nullptr,
                                                       need_w ? dw.data<T>() : nullptr, rows, cols);
                           },
                           EAT_CUDA([&]<typename T>() {
                             // Per-chunk partial column sums of the weight gradient (deterministic reduction).
                             Tensor partial =
                                 need_w ? Tensor::empty({cuda::column_chunks(rows), cols}, DType::f32, x.device()) : Tensor();
                             cuda::rms_norm_backward<T>(x.data<T>(), w.defined() ? w.data<T>() : nullptr, r.data<float>(),
                                                        g[0].data<T>(), need_x ? dx.data<T>() : nullptr,
                                                        need_w ? dw.data<T>() : nullptr,
                                                        need_w ? partial.data<float>() : nullptr, rows, cols,
                                                        cuda::compute_stream());
                           }));
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

Tensor l2_normalize(const Tensor& x, double eps) {
  check_floating("l2_normalize", x);
  EAT_CHECK(x.dim() >= 1 && x.size(-1) > 0, "l2_normalize: input ", shape_str(x.shape()), " has an empty last dimension");
  EAT_CHECK(eps > 0, "l2_normalize: eps must be positive, got ", eps);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  Tensor y = Tensor::empty_like(x);
  Tensor norm = row_stats(rows, x);
  dispatch(
      "l2_normalize", x,
      [&]<typename T>() { cpu::l2_normalize_forward<T>(x.data<T>(), y.data<T>(), norm.data<double>(), rows, cols, eps); },
      EAT_CUDA([&]<typename T>() {
        cuda::l2_normalize_forward<T>(x.data<T>(), y.data<T>(), norm.data<float>(), rows, cols, static_cast<float>(eps),
                                      cuda::compute_stream());
      }));
  if (autograd::needs_record({&x})) {
    autograd::record("l2_normalize", {x}, {y},
                     [x = x.detach(), norm, rows, cols, eps](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor dx = Tensor::empty_like(x);
                       dispatch(
                           "l2_normalize backward", x,
                           [&]<typename T>() {
                             cpu::l2_normalize_backward<T>(x.data<T>(), norm.data<double>(), g[0].data<T>(), dx.data<T>(),
                                                           rows, cols, eps);
                           },
                           EAT_CUDA([&]<typename T>() {
                             cuda::l2_normalize_backward<T>(x.data<T>(), norm.data<float>(), g[0].data<T>(), dx.data<T>(),
                                                            rows, cols, static_cast<float>(eps), cuda::compute_stream());
                           }));
                       return {dx};
                     });
  }
  return y;
}

}  // namespace eat
