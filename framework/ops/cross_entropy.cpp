// cross_entropy fused with log-softmax: the [N, V] probabilities are never stored; the backward
// recomputes them from the logits and the saved per-row log-sum-exp.
#include <memory>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/ids.h"
#include "kernels/cpu/cross_entropy.h"

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
  Tensor lse = Tensor::empty({N}, DType::f64);
  int64_t count = 0;
  double total = 0;
  dispatch("cross_entropy", logits, [&]<typename T>() {
    total = cpu::cross_entropy_forward<T>(logits.data<T>(), tg->data(), lse.data<double>(), N, V, ignore_index, &count);
  });
  // Every position ignored: the loss is 0 with a zero gradient (nothing to learn from), not NaN.
  const double inv_count = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
  Tensor loss = Tensor::full({1}, total * inv_count, logits.dtype());
  if (autograd::needs_record({&logits})) {
    autograd::record("cross_entropy", {logits}, {loss},
                     [lg = logits.detach(), tg, lse, inv_count, N, V, ignore_index](const std::vector<Tensor>& g) {
                       Tensor d = Tensor::empty_like(lg);
                       dispatch("cross_entropy backward", lg, [&]<typename T>() {
                         const double scale = static_cast<double>(g[0].data<T>()[0]) * inv_count;
                         cpu::cross_entropy_backward<T>(lg.data<T>(), tg->data(), lse.data<double>(), scale, d.data<T>(), N, V,
                                                        ignore_index);
                       });
                       return std::vector<Tensor>{d};
                     });
  }
  return loss;
}

}  // namespace eat
