// concat_outer and split_last: the two ends of a joined projection (several Linear layers run as
// one GEMM). concat_outer joins their weights, for free when the weights already lie side by side
// in one storage (framework/nn/joined_linear.h); split_last hands each layer its columns of the
// joined output.
#include <numeric>

#include "framework/autograd.h"
#include "framework/ops.h"
#include "framework/ops/joins.h"
#include "framework/parallel/time_rows.h"

namespace eat {

namespace {

// Whether the parts' data follow one another in one storage, in order: their join is a view.
bool adjacent_in_one_storage(const std::vector<Tensor>& parts) {
  for (size_t i = 1; i < parts.size(); ++i) {
    const TensorImpl &prev = parts[i - 1].impl(), &next = parts[i].impl();
    if (next.storage != prev.storage || next.offset != prev.offset + parts[i - 1].numel()) return false;
  }
  return true;
}

}  // namespace

Tensor concat_outer(const std::vector<Tensor>& parts) {
  EAT_CHECK(!parts.empty(), "concat_outer: no tensors to join");
  const Tensor& first = parts[0];
  EAT_CHECK(first.dim() >= 1, "concat_outer: needs at least one dimension, got ", shape_str(first.shape()));
  Shape shape = first.shape();
  shape[0] = 0;
  std::vector<int64_t> rows;
  for (const Tensor& p : parts) {
    check_same_dtype("concat_outer", first, p);
    check_same_device("concat_outer", first, p);
    EAT_CHECK(p.dim() == first.dim() && std::equal(p.shape().begin() + 1, p.shape().end(), first.shape().begin() + 1),
              "concat_outer: ", shape_str(p.shape()), " and ", shape_str(first.shape()), " differ past axis 0");
    rows.push_back(p.size(0));
    shape[0] += p.size(0);
  }
  Tensor y;
  if (adjacent_in_one_storage(parts)) {
    auto v = std::make_shared<TensorImpl>();
    v->storage = first.impl().storage;
    v->offset = first.impl().offset;
    v->shape = shape;
    v->dtype = first.dtype();
    y = Tensor(std::move(v));
  } else {
    y = Tensor::empty(shape, first.dtype(), first.device());
    int64_t row = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      y.slice_outer(row, row + rows[i]).copy_from(parts[i]);
      row += rows[i];
    }
  }
  if (autograd::needs_record(parts)) {
    autograd::record("concat_outer", parts, {y}, [rows](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      std::vector<Tensor> dparts;
      int64_t row = 0;
      for (int64_t n : rows) {
        dparts.push_back(g[0].slice_outer(row, row + n));
        row += n;
      }
      return dparts;
    });
  }
  return y;
}

std::vector<Tensor> split_last(const Tensor& x, const std::vector<int64_t>& sizes) {
  EAT_CHECK(x.dim() >= 1, "split_last: needs at least one dimension, got ", shape_str(x.shape()));
  const int64_t n = x.size(-1);
  for (int64_t s : sizes) EAT_CHECK(s >= 0, "split_last: negative width ", s);
  EAT_CHECK(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) == n, "split_last: widths do not add up to the last axis of ",
            shape_str(x.shape()));
  const int64_t rows = x.numel() / std::max<int64_t>(n, 1);
  const size_t elem = dtype_size(x.dtype()), pitch = static_cast<size_t>(n) * elem;
  std::vector<Tensor> parts;
  int64_t column = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape.back() = s;
    Tensor part = Tensor::empty(shape, x.dtype(), x.device());
    copy_blocks(part.raw_data(), static_cast<size_t>(s) * elem, static_cast<const char*>(x.raw_data()) + column * elem,
                pitch, static_cast<size_t>(s) * elem, rows, x.device());
    parts.push_back(part);
    column += s;
  }
  if (autograd::needs_record({&x})) {
    autograd::record("split_last", {x}, parts,
                     [like = x.detach(), sizes, rows, elem, pitch](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       // A part that did not reach the loss leaves its columns zero.
                       bool all = true;
                       for (const Tensor& gi : g) all = all && gi.defined();
                       Tensor dx = all ? Tensor::empty_like(like) : Tensor::zeros_like(like);
                       int64_t column = 0;
                       for (size_t i = 0; i < sizes.size(); ++i) {
                         if (g[i].defined())
                           copy_blocks(static_cast<char*>(dx.raw_data()) + column * elem, pitch, g[i].raw_data(),
                                       static_cast<size_t>(sizes[i]) * elem, static_cast<size_t>(sizes[i]) * elem, rows,
                                       dx.device());
                         column += sizes[i];
                       }
                       return {dx};
                     });
  }
  return parts;
}

}  // namespace eat
