// concat_outer and split_last: the two ends of a joined projection (several Linear layers run as
// one GEMM). concat_outer joins their weights, for free when the weights already lie side by side
// in one storage (framework/nn/joined_linear.h); split_last hands each layer its columns of the
// joined output.
#include <numeric>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/joins.h"
#include "framework/ops/linear_gradients.h"
#include "framework/profiler.h"
#include "framework/parallel/time_rows.h"
#include "kernels/cpu/copy_rows.h"
#include "kernels/cpu/packed_gemm.h"
#include "kernels/matmul.h"

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

namespace {

// The parts' bytes per row, each part's width times the element size.
std::vector<size_t> byte_widths(const std::vector<int64_t>& sizes, size_t elem) {
  std::vector<size_t> widths;
  for (int64_t s : sizes) widths.push_back(static_cast<size_t>(s) * elem);
  return widths;
}

// parts[i] <- its columns of x ([rows, sum of widths] bytes); on the CPU in one pass over the rows,
// on CUDA a strided copy per part.
void copy_out_columns(const Tensor& x, const std::vector<Tensor>& parts, const std::vector<size_t>& widths, int64_t rows) {
  if (x.device() == Device::cpu) {
    std::vector<void*> out;
    for (const Tensor& p : parts) out.push_back(p.raw_data());
    cpu::split_columns(x.raw_data(), out, widths, static_cast<size_t>(rows));
    return;
  }
  const size_t pitch = std::accumulate(widths.begin(), widths.end(), size_t{0});
  size_t column = 0;
  for (size_t i = 0; i < parts.size(); column += widths[i], ++i)
    copy_blocks(parts[i].raw_data(), widths[i], static_cast<const char*>(x.raw_data()) + column, pitch, widths[i], rows,
                x.device());
}

// What the joined tensor is: its shape, dtype and device (a gradient's is that of its tensor).
struct Like {
  Shape shape;
  DType dtype;
  Device device;
};
Like like(const Tensor& t) { return {t.shape(), t.dtype(), t.device()}; }

// The columns of dx from the parts' gradients, zero where a part has none.
Tensor joined_gradient(const Like& like, const std::vector<Tensor>& g, const std::vector<size_t>& widths, int64_t rows) {
  if (like.device == Device::cpu) {
    Tensor dx = Tensor::empty(like.shape, like.dtype, like.device);
    std::vector<const void*> in;
    for (const Tensor& gi : g) in.push_back(gi.defined() ? gi.raw_data() : nullptr);
    cpu::join_columns(dx.raw_data(), in, widths, static_cast<size_t>(rows));
    return dx;
  }
  bool all = true;
  for (const Tensor& gi : g) all = all && gi.defined();
  Tensor dx = all ? Tensor::empty(like.shape, like.dtype, like.device) : Tensor::zeros(like.shape, like.dtype, like.device);
  const size_t pitch = std::accumulate(widths.begin(), widths.end(), size_t{0});
  size_t column = 0;
  for (size_t i = 0; i < g.size(); column += widths[i], ++i)
    if (g[i].defined())
      copy_blocks(static_cast<char*>(dx.raw_data()) + column, pitch, g[i].raw_data(), widths[i], widths[i], rows,
                  dx.device());
  return dx;
}

}  // namespace

std::vector<Tensor> split_last(const Tensor& x, const std::vector<int64_t>& sizes) {
  EAT_CHECK(x.dim() >= 1, "split_last: needs at least one dimension, got ", shape_str(x.shape()));
  const int64_t n = x.size(-1);
  for (int64_t s : sizes) EAT_CHECK(s >= 0, "split_last: negative width ", s);
  EAT_CHECK(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) == n, "split_last: widths do not add up to the last axis of ",
            shape_str(x.shape()));
  const int64_t rows = x.numel() / std::max<int64_t>(n, 1);
  const std::vector<size_t> widths = byte_widths(sizes, dtype_size(x.dtype()));
  std::vector<Tensor> parts;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape.back() = s;
    parts.push_back(Tensor::empty(shape, x.dtype(), x.device()));
  }
  {
    // Timed like any kernel call: untimed, a whole pass over x hid in --profile's "outside ops".
    profiler::OpScope timed("split_last", x.device());
    copy_out_columns(x, parts, widths, rows);
  }
  if (autograd::needs_record({&x})) {
    autograd::record("split_last", {x}, parts,
                     [joined = like(x), widths, rows](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       // A part that did not reach the loss leaves its columns zero.
                       return {joined_gradient(joined, g, widths, rows)};
                     });
  }
  return parts;
}

// The CPU's packed GEMM writes straight into the parts when it runs the product (f32 on AVX-512 or
// AVX2, a product large enough).
bool products_into_parts(const Tensor& x, const LinearShape& s) {
  return x.device() == Device::cpu && x.dtype() == DType::f32 && cpu::packed_gemm_worth(s.rows, s.out, s.in);
}

// The gradients of linear_split from its parts': the packed GEMM reads the parts where they lie
// when every part has a gradient and it runs both products; otherwise they are joined first.
std::vector<Tensor> linear_split_gradients(const std::vector<Tensor>& g, const Tensor& x, const Tensor& w,
                                           const LinearShape& s, const std::vector<int64_t>& sizes, const Like& joined,
                                           bool need_x, bool need_w, bool need_b) {
  bool all = true;
  for (const Tensor& gi : g) all = all && gi.defined();
  if (!all || !cpu::packed_gemm_worth(s.rows, s.in, s.out) || !cpu::packed_gemm_worth(s.out, s.in, s.rows))
    return linear_gradients(joined_gradient(joined, g, byte_widths(sizes, sizeof(float)), s.rows), x, w, s, need_x,
                            need_w, need_b);
  std::vector<const float*> dy;
  for (const Tensor& gi : g) dy.push_back(gi.data<float>());
  Tensor dx = empty_like_if(need_x, x), dw = empty_like_if(need_w, w);
  Tensor db = need_b ? Tensor::empty({s.out}, x.dtype(), x.device()) : Tensor();
  if (need_x)  // dx = dy w: dy [rows, out] in parts along its inner dimension
    cpu::packed_gemm_from_parts(dy, sizes, w.data<float>(), dx.data<float>(), s.rows, s.in, s.out, false, false, false);
  if (need_w)  // dw = dy^T x: dy^T's rows in parts
    cpu::packed_gemm_from_parts(dy, sizes, x.data<float>(), dw.data<float>(), s.out, s.in, s.rows, true, false, false);
  if (need_b)
    for (size_t i = 0, first = 0; i < g.size(); first += static_cast<size_t>(sizes[i++]))
      cpu::column_sums(dy[i], db.data<float>() + first, s.rows, sizes[i]);
  return {dx, dw, db};
}

std::vector<Tensor> linear_split(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const std::vector<int64_t>& sizes) {
  const LinearShape s = check_linear("linear_split", x, weight, bias);
  EAT_CHECK(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) == s.out, "linear_split: widths do not add up to ",
            "the weight's ", s.out, " rows");
  if (!products_into_parts(x, s)) return split_last(linear(x, weight, bias), sizes);
  std::vector<Tensor> parts;
  std::vector<float*> outs;
  for (int64_t w : sizes) {
    Shape shape = x.shape();
    shape.back() = w;
    parts.push_back(Tensor::empty(shape, x.dtype(), x.device()));
    outs.push_back(parts.back().data<float>());
  }
  {
    profiler::OpScope timed("linear_split", x.device());
    cpu::packed_gemm_into_parts(x.data<float>(), weight.data<float>(), outs, sizes, s.rows, s.in, false, true);
    if (bias.defined())
      for (size_t i = 0, first = 0; i < parts.size(); first += static_cast<size_t>(sizes[i++]))
        cpu::add_row_vector(outs[i], bias.data<float>() + first, s.rows, sizes[i]);
  }
  if (autograd::needs_record({&x, &weight, &bias})) {
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad(), need_b = bias.defined() && bias.requires_grad();
    Like joined = like(x);
    joined.shape.back() = s.out;
    autograd::record("linear_split", {x, weight, bias}, parts,
                     [x = x.detach(), w = weight.detach(), joined, sizes, need_x, need_w, need_b,
                      s](const std::vector<Tensor>& g) {
                       return linear_split_gradients(g, x, w, s, sizes, joined, need_x, need_w, need_b);
                     });
  }
  return parts;
}

}  // namespace eat
