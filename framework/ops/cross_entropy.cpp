// cross_entropy fused with log-softmax: the [N, V] probabilities are never stored; the backward
// recomputes them from the logits and the saved per-row log-sum-exp.
#include <memory>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/ids.h"
#include "framework/ops/row_stats.h"
#include "kernels/cross_entropy.h"

namespace eat {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  check_floating("cross_entropy", logits);
  EAT_CHECK(logits.dim() >= 1 && logits.size(-1) > 0, "cross_entropy: logits ", shape_str(logits.shape()),
            " need a vocabulary dimension");
  const int64_t V = logits.size(-1), N = logits.numel() / V;
  Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  EAT_CHECK(targets.shape() == lead || (targets.numel() == N && targets.dim() == 1), "cross_entropy: targets ",
            shape_str(targets.shape()), " do not match logits ", shape_str(logits.shape()));
  auto tg = std::make_shared<std::vector<int64_t>>(read_ids("cross_entropy", "target", targets, V, ignore_index));
  Tensor lse = row_stats(N, logits);
  // Every position ignored: the loss is 0 with a zero gradient (nothing to learn from), not NaN.
  auto inverse = [](int64_t count) { return count > 0 ? 1.0 / static_cast<double>(count) : 0.0; };
  double inv_count = 0;
  Tensor loss;
  Tensor tg_dev;  // the targets again, on the device, for the CUDA kernels
  dispatch(
      "cross_entropy", logits,
      [&]<typename T>() {
        int64_t count = 0;
        const double total =
            cpu::cross_entropy_forward<T>(logits.data<T>(), tg->data(), lse.data<double>(), N, V, ignore_index, &count);
        inv_count = inverse(count);
        loss = Tensor::full({1}, total * inv_count, logits.dtype());
      },
      EAT_CUDA([&]<typename T>() {
        // The count is known on the host, so the loss is produced on the device without a sync.
        int64_t count = 0;
        for (int64_t t : *tg) count += t != ignore_index;
        inv_count = inverse(count);
        tg_dev = Tensor::from_vector<int64_t>(*tg, {N}).to(logits.device());
        Tensor row_loss = Tensor::empty({N}, DType::f32, logits.device());
        loss = Tensor::empty({1}, logits.dtype(), logits.device());
        cuda::cross_entropy_forward<T>(logits.data<T>(), tg_dev.data<int64_t>(), lse.data<float>(), row_loss.data<float>(), N,
                                       V, ignore_index, static_cast<float>(inv_count), loss.data<T>());
      }));
  if (autograd::needs_record({&logits})) {
    autograd::record("cross_entropy", {logits}, {loss},
                     [lg = logits.detach(), tg, tg_dev, lse, inv_count, N, V, ignore_index](const std::vector<Tensor>& g) {
                       Tensor d = Tensor::empty_like(lg);
                       dispatch(
                           "cross_entropy backward", lg,
                           [&]<typename T>() {
                             const double scale = static_cast<double>(g[0].data<T>()[0]) * inv_count;
                             cpu::cross_entropy_backward<T>(lg.data<T>(), tg->data(), lse.data<double>(), scale, d.data<T>(),
                                                            N, V, ignore_index);
                           },
                           EAT_CUDA([&]<typename T>() {
                             cuda::cross_entropy_backward<T>(lg.data<T>(), tg_dev.data<int64_t>(), lse.data<float>(),
                                                             g[0].data<T>(), static_cast<float>(inv_count), d.data<T>(), N,
                                                             V, ignore_index);
                           }));
                       return std::vector<Tensor>{d};
                     });
  }
  return loss;
}

}  // namespace eat
