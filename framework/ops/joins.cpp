// concat_outer and split_last: the two ends of a joined projection (several Linear layers run as
// one GEMM). concat_outer joins their weights, for free when the weights already lie side by side
// in one storage (framework/nn/joined_linear.h); split_last hands each layer its columns of the
// joined output; linear_split makes the parts straight from the product (and RoPEs q and k on the
// way, where asked).
#include <algorithm>
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
#include "kernels/cpu/rope_rows.h"
#include "kernels/matmul.h"
#include "kernels/rope.h"

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

namespace {

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

bool any_then(const std::vector<PartThen>& then) {
  return std::any_of(then.begin(), then.end(), [](const PartThen& t) { return t.op != PartThen::Op::none; });
}

void check_then(const Tensor& x, const std::vector<int64_t>& sizes, const std::vector<PartThen>& then) {
  EAT_CHECK(then.empty() || then.size() == sizes.size(), "linear_split: ", then.size(), " ops after the product for ",
            sizes.size(), " parts");
  for (size_t i = 0; i < then.size(); ++i) {
    if (then[i].op != PartThen::Op::rope) continue;
    const int64_t heads = then[i].heads;
    EAT_CHECK(x.dim() == 3, "linear_split: RoPE on part ", i, " needs x [B, T, in], got ", shape_str(x.shape()));
    EAT_CHECK(heads > 0 && sizes[i] % heads == 0 && (sizes[i] / heads) % 2 == 0, "linear_split: RoPE on part ", i,
              " of width ", sizes[i], " over ", heads, " heads needs an even head width");
  }
}

// The parts through their ops, as separate ops.
std::vector<Tensor> apply_then(std::vector<Tensor> parts, const std::vector<PartThen>& then) {
  for (size_t i = 0; i < then.size(); ++i) {
    const PartThen& t = then[i];
    if (t.op == PartThen::Op::rope) {
      const Shape shape = parts[i].shape();
      parts[i] = reshape(rope(reshape(parts[i], {shape[0], shape[1], t.heads, shape[2] / t.heads}), t.theta, t.offset,
                              t.chunk),
                         shape);
    }
  }
  return parts;
}

// Every RoPE among the parts at the same positions and head width (q and k): one table of angles,
// the calling thread's, serves them all.
bool one_rope_table(const std::vector<PartThen>& then, const std::vector<int64_t>& sizes) {
  const PartThen* first = nullptr;
  int64_t width = 0;
  for (size_t i = 0; i < then.size(); ++i) {
    const PartThen& t = then[i];
    if (t.op != PartThen::Op::rope) continue;
    if (!first) {
      first = &t;
      width = sizes[i] / t.heads;
    } else if (t.theta != first->theta || t.offset != first->offset || t.chunk != first->chunk ||
               sizes[i] / t.heads != width) {
      return false;
    }
  }
  return true;
}

// Each part's op on the rows [row, row + rows) the packed GEMM has just finished, in place.
struct ThenOnRows {
  const std::vector<PartThen>* then;
  std::vector<float*> parts;
  const cpu::RopeAngles<float>* angles = nullptr;

  static void run(void* context, int64_t row, int64_t rows) {
    const ThenOnRows& c = *static_cast<const ThenOnRows*>(context);
    for (size_t i = 0; i < c.then->size(); ++i) {
      const PartThen& t = (*c.then)[i];
      if (t.op == PartThen::Op::rope) cpu::rope_rows(*c.angles, c.parts[i], c.parts[i], row, rows, t.heads, false);
    }
  }
};

}  // namespace

std::vector<Tensor> linear_split(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const std::vector<int64_t>& sizes, const std::vector<PartThen>& then) {
  const LinearShape s = check_linear("linear_split", x, weight, bias);
  EAT_CHECK(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) == s.out, "linear_split: widths do not add up to ",
            "the weight's ", s.out, " rows");
  check_then(x, sizes, then);
  const bool fused_then = any_then(then);
  // A bias comes before the parts' ops, and the packed GEMM adds it after its product.
  if (!products_into_parts(x, s) || (fused_then && (bias.defined() || !one_rope_table(then, sizes))))
    return apply_then(split_last(linear(x, weight, bias), sizes), then);
  std::vector<Tensor> parts;
  ThenOnRows on_rows{&then, {}};
  for (size_t i = 0; i < sizes.size(); ++i) {
    Shape shape = x.shape();
    shape.back() = sizes[i];
    parts.push_back(Tensor::empty(shape, x.dtype(), x.device()));
    on_rows.parts.push_back(parts.back().data<float>());
    if (fused_then && then[i].op == PartThen::Op::rope)
      on_rows.angles = &cpu::rope_angles<float>(x.size(1), sizes[i] / then[i].heads, then[i].theta, then[i].offset,
                                                then[i].chunk);
  }
  {
    profiler::OpScope timed("linear_split", x.device());
    const cpu::RowsDone done{&ThenOnRows::run, &on_rows};
    cpu::packed_gemm_into_parts(x.data<float>(), weight.data<float>(), on_rows.parts, sizes, s.rows, s.in, false, true,
                                fused_then ? &done : nullptr);
    if (bias.defined())
      for (size_t i = 0, first = 0; i < parts.size(); first += static_cast<size_t>(sizes[i++]))
        cpu::add_row_vector(on_rows.parts[i], bias.data<float>() + first, s.rows, sizes[i]);
  }
  if (autograd::needs_record({&x, &weight, &bias})) {
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad(), need_b = bias.defined() && bias.requires_grad();
    Like joined = like(x);
    joined.shape.back() = s.out;
    autograd::record("linear_split", {x, weight, bias}, parts,
                     [x = x.detach(), w = weight.detach(), joined, sizes, then, need_x, need_w, need_b,
                      s](const std::vector<Tensor>& g) {
                       // Each rotated part's gradient rotated back (rope's backward), over itself
                       // where nothing else holds it.
                       std::vector<Tensor> g_made = g;
                       for (size_t i = 0; i < then.size(); ++i) {
                         if (!g[i].defined() || then[i].op != PartThen::Op::rope) continue;
                         g_made[i] = autograd::reuse_or_new(g[i]);
                         cpu::rope_apply<float>(g[i].data<float>(), g_made[i].data<float>(), x.size(0), x.size(1),
                                                then[i].heads, sizes[i] / then[i].heads, then[i].theta, then[i].offset,
                                                then[i].chunk, true);
                       }
                       return linear_split_gradients(g_made, x, w, s, sizes, joined, need_x, need_w, need_b);
                     });
  }
  return parts;
}

}  // namespace eat
