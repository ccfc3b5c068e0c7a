// embedding: rows of a [V, D] table by id; the backward scatter-adds into the table's gradient.
#include <memory>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/ids.h"
#include "kernels/embedding.h"

namespace eat {

Tensor embedding(const Tensor& ids, const Tensor& weight) {
  check_floating("embedding", weight);
  check_dim("embedding", weight, 2, "weight");
  const int64_t vocab = weight.size(0), dim = weight.size(1);
  auto idx = std::make_shared<std::vector<int64_t>>(read_ids("embedding", "id", ids, vocab));
  Shape out_shape = ids.shape();
  out_shape.push_back(dim);
  Tensor y = Tensor::empty(out_shape, weight.dtype(), weight.device());
  const int64_t n = ids.numel();
  dispatch(
      "embedding", weight, [&]<typename T>() { cpu::embedding_forward<T>(idx->data(), weight.data<T>(), y.data<T>(), n, dim); },
      EAT_CUDA([&]<typename T>() {
        Tensor ids_dev = Tensor::from_vector<int64_t>(*idx, {n}).to(weight.device());
        cuda::embedding_forward<T>(ids_dev.data<int64_t>(), weight.data<T>(), y.data<T>(), n, dim);
      }));
  if (autograd::needs_record({&weight})) {
    autograd::record("embedding", {weight}, {y},
                     [idx, like = weight.detach(), n, vocab, dim](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor dw = Tensor::empty_like(like);
                       dispatch(
                           "embedding backward", like,
                           [&]<typename T>() {
                             cpu::embedding_backward<T>(idx->data(), g[0].data<T>(), dw.data<T>(), n, vocab, dim);
                           },
                           EAT_CUDA([&]<typename T>() {
                             // Positions grouped by id on the host, so each table row has one owner on the device.
                             Tensor offsets = Tensor::empty({vocab + 1}, DType::i64), order = Tensor::empty({n}, DType::i64);
                             cuda::group_by_id(idx->data(), n, vocab, offsets.data<int64_t>(), order.data<int64_t>());
                             Tensor offsets_dev = offsets.to(like.device()), order_dev = order.to(like.device());
                             cuda::embedding_backward<T>(offsets_dev.data<int64_t>(), order_dev.data<int64_t>(),
                                                         g[0].data<T>(), dw.data<T>(), vocab, dim);
                           }));
                       return {dw};
                     });
  }
  return y;
}

}  // namespace eat
