// reshape and slice_outer: free views sharing the input's storage.
#include "framework/autograd.h"
#include "framework/ops.h"

namespace eat {

namespace {

Tensor view_of(const Tensor& x, const Shape& shape, int64_t extra_offset) {
  auto v = std::make_shared<TensorImpl>();
  v->storage = x.impl().storage;
  v->offset = x.impl().offset + extra_offset;
  v->shape = shape;
  v->dtype = x.dtype();
  return Tensor(std::move(v));
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape target = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      EAT_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      EAT_CHECK(target[i] >= 0, "reshape: bad dimension in ", shape_str(shape));
      known *= target[i];
    }
  }
  if (infer >= 0) {
    EAT_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot view ", shape_str(x.shape()), " as ",
              shape_str(shape));
    target[static_cast<size_t>(infer)] = x.numel() / known;
  }
  EAT_CHECK(shape_numel(target) == x.numel(), "reshape: cannot view ", shape_str(x.shape()), " (", x.numel(),
            " elements) as ", shape_str(shape));
  Tensor y = view_of(x, target, 0);
  if (autograd::needs_record({&x})) {
    Shape in_shape = x.shape();
    autograd::record("reshape", {x}, {y}, [in_shape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {reshape(g[0], in_shape)};
    });
  }
  return y;
}

Tensor slice_outer(const Tensor& x, int64_t begin, int64_t end) {
  EAT_CHECK(x.dim() >= 1, "slice_outer: needs at least one dimension, got ", shape_str(x.shape()));
  EAT_CHECK(0 <= begin && begin <= end && end <= x.size(0), "slice_outer: rows [", begin, ", ", end,
            ") out of range for ", shape_str(x.shape()));
  Shape shape = x.shape();
  int64_t row = x.numel() / std::max<int64_t>(shape[0], 1);
  shape[0] = end - begin;
  Tensor y = view_of(x, shape, begin * row);
  if (autograd::needs_record({&x})) {
    Tensor like = x.detach();
    autograd::record("slice_outer", {x}, {y},
                     [like, begin, end](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor dx = Tensor::zeros_like(like);
                       Tensor window = dx.slice_outer(begin, end);
                       window.copy_from(g[0]);
                       return {dx};
                     });
  }
  return y;
}

}  // namespace eat
