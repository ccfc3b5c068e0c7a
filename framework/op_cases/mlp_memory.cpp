// Op table rows: Titans' two-layer MLP memory (M(x) = silu(x W1) W2), its output at chunks 1, 16
// and 64 and each of its final states. Inputs: q, k [B, T, H, d], v [B, T, H, e], the theta, eta
// and alpha logits [B, T, H], the initial W1 and W2 ([H, ...] shared by the batch, or
// [B, H, ...]) and, where given, the initial momenta S1 and S2 [B, H, ...]. The reference is the
// per-token rule written plainly (titans.md 1): each token's gradient of ||M(k_t) - v_t||^2 taken
// at the chunk-start weights, then the momentum and forgetting steps, then y_t = M_t(q_t).
#include <algorithm>
#include <cmath>

#include "framework/flops.h"
#include "framework/op_cases/memory_reference.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

// Row `rows` x `cols` matrices as flat vectors, row-major.
using Flat = std::vector<double>;

// One head's weights or momenta: W1 [d, h] and W2 [h, e].
struct Layers {
  Flat l1, l2;
};

// The per-token loop in f64 for every head; returns y [B, T, H, e] or one final state.
enum class Output { y, w1, w2, s1, s2 };
Tensor per_token_reference(const std::vector<Tensor>& in, int64_t chunk, double max_lr, Output what) {
  const int64_t B = in[0].size(0), T = in[0].size(1), H = in[0].size(2), d = in[0].size(3), e = in[2].size(3);
  const int64_t h = in[6].size(-1);
  const bool shared = in[6].dim() == 3, momentum = in.size() > 8;
  std::vector<Flat> x;
  for (const Tensor& t : in) x.push_back(t.to_f64_vector());
  const Flat &q = x[0], &k = x[1], &v = x[2];
  Flat y(static_cast<size_t>(B * T * H * e));
  const bool state_out = what != Output::y;
  Flat state(state_out ? static_cast<size_t>(B * H * (what == Output::w1 || what == Output::s1 ? d * h : h * e)) : 0);
  Layers W, S, W0;  // W0: the chunk-start weights, where every gradient of the chunk is taken
  auto start = [&](int64_t b, int64_t hd) {
    const int64_t wh = shared ? hd : b * H + hd, bh = b * H + hd;
    W = {Flat(x[6].begin() + wh * d * h, x[6].begin() + (wh + 1) * d * h),
         Flat(x[7].begin() + wh * h * e, x[7].begin() + (wh + 1) * h * e)};
    S = {Flat(static_cast<size_t>(d * h)), Flat(static_cast<size_t>(h * e))};
    if (momentum) {
      S.l1.assign(x[8].begin() + bh * d * h, x[8].begin() + (bh + 1) * d * h);
      S.l2.assign(x[9].begin() + bh * h * e, x[9].begin() + (bh + 1) * h * e);
    }
  };
  auto token = [&](size_t row, const TokenGates& g) {
    const double* kt = &k[row * d];
    const double* vt = &v[row * e];
    const double* qt = &q[row * d];
    // z = k W1, a = silu(z), err = 2 (a W2 - v): grad W2 = a^T err, grad W1 = k^T (err W2^T o silu'(z)).
    Flat z(static_cast<size_t>(h), 0.0), act(static_cast<size_t>(h)), err(static_cast<size_t>(e)),
        delta(static_cast<size_t>(h), 0.0);
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < h; ++j) z[j] += kt[i] * W0.l1[i * h + j];
    for (int64_t j = 0; j < h; ++j) act[j] = z[j] * sigmoid_f64(z[j]);
    for (int64_t c = 0; c < e; ++c) {
      double s = 0;
      for (int64_t j = 0; j < h; ++j) s += act[j] * W0.l2[j * e + c];
      err[c] = 2 * (s - vt[c]);
    }
    for (int64_t j = 0; j < h; ++j) {
      double r = 0;
      for (int64_t c = 0; c < e; ++c) r += err[c] * W0.l2[j * e + c];
      const double sg = sigmoid_f64(z[j]);
      delta[j] = r * sg * (1 + z[j] * (1 - sg));
    }
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < h; ++j) g.step(kt[i] * delta[j], S.l1[i * h + j], W.l1[i * h + j]);
    for (int64_t j = 0; j < h; ++j)
      for (int64_t c = 0; c < e; ++c) g.step(act[j] * err[c], S.l2[j * e + c], W.l2[j * e + c]);
    // y_t = M_t(q_t), after token t's update.
    for (int64_t j = 0; j < h; ++j) {
      double zq = 0;
      for (int64_t i = 0; i < d; ++i) zq += qt[i] * W.l1[i * h + j];
      const double aq = zq * sigmoid_f64(zq);
      for (int64_t c = 0; c < e; ++c) y[row * e + c] += aq * W.l2[j * e + c];
    }
  };
  auto finish = [&](int64_t b, int64_t hd) {
    if (!state_out) return;
    const Flat& final_state = what == Output::w1 ? W.l1 : what == Output::w2 ? W.l2 : what == Output::s1 ? S.l1 : S.l2;
    std::copy(final_state.begin(), final_state.end(), state.begin() + (b * H + hd) * final_state.size());
  };
  per_token_loop(B, T, H, chunk, max_lr, x[3], x[4], x[5], start, [&] { W0 = W; }, token, finish);
  if (!state_out) return Tensor::from_vector<double>(y, {B, T, H, e});
  const bool first = what == Output::w1 || what == Output::s1;
  return Tensor::from_vector<double>(state, first ? Shape{B, H, d, h} : Shape{B, H, h, e});
}

// The op on the row's inputs; on CUDA the states are f32 whatever the inputs (bf16 included), so
// the initial ones are cast there (their gradients flow back through the cast).
MlpMemoryResult call_op(const std::vector<Tensor>& in, int64_t chunk, double max_lr) {
  auto state = [](const Tensor& t) { return t.device() == Device::cpu ? t : cast(t, DType::f32); };
  MlpMemoryState initial{state(in[6]), state(in[7]), Tensor(), Tensor()};
  if (in.size() > 8) {
    initial.s1 = state(in[8]);
    initial.s2 = state(in[9]);
  }
  return mlp_memory(in[0], in[1], in[2], {in[3], in[4], in[5]}, initial, {.chunk = chunk, .max_lr = max_lr, .checkpoint_chunks = 0});
}

// q, k, v, the three logit sets, W1 and W2 (shared [H, ...] or per sequence), and the momenta.
// Scales keep the inner steps stable at kMaxLr: |k| and |q| about 1 (the model L2-normalises
// them), W1 and W2 with unit-variance outputs (so |silu(k W1)|^2 is about h / (4 d)).
Sizes inputs(int64_t B, int64_t T, int64_t H, int64_t d, int64_t h, int64_t e, bool shared, bool momentum) {
  const double unit_d = 1.0 / std::sqrt(static_cast<double>(d)), unit_h = 1.0 / std::sqrt(static_cast<double>(h));
  Sizes s{normal({B, T, H, d}, unit_d), normal({B, T, H, d}, unit_d), normal({B, T, H, e}),
          normal({B, T, H}),            normal({B, T, H}, 1.5),       normal({B, T, H}, 1.5)};
  const Shape w1 = shared ? Shape{H, d, h} : Shape{B, H, d, h}, w2 = shared ? Shape{H, h, e} : Shape{B, H, h, e};
  s.push_back(normal(w1, unit_d));
  s.push_back(normal(w2, unit_h));
  if (momentum) {
    s.push_back(normal({B, H, d, h}, 0.5 * unit_d));
    s.push_back(normal({B, H, h, e}, 0.5 * unit_h));
  }
  return s;
}

constexpr double kMaxLr = 0.5;  // larger than the model's 0.1, so the memory's updates weigh in the output

OpCase memory_row(std::string name, int64_t chunk, Output what) {
  OpCase row;
  row.name = std::move(name);
  // One token; a ragged last chunk with two heads, per-sequence weights and momenta; shared
  // weights with momenta, one head, d != e.
  // (At chunk 64 one ragged chunk after a full one: at T = 133 the f64 rounding of the loss over
  // the finite-difference step alone reached the gradient check's tolerance.)
  const int64_t T = chunk == 1 ? 9 : chunk < 64 ? 2 * chunk + 5 : chunk + 7;
  row.small = {inputs(1, 1, 1, 2, 3, 2, true, false), inputs(2, T, 2, 3, 4, 2, false, true),
               inputs(1, T, 1, 2, 5, 3, true, true)};
  row.medium = {inputs(2, 3 * chunk + 7, 2, 16, 64, 16, true, false), inputs(1, 100, 3, 8, 32, 12, false, true)};
  row.tol.reference = 2e-14;  // the dual form against the per-token loop: summation order only (4.3e-15 seen)
  row.tol.f32 = 2e-5;         // f32 through the non-linear recurrence over 100 tokens, gradients included (3.8e-6 seen)
  row.call = [=](auto& in) {
    MlpMemoryResult r = call_op(in, chunk, kMaxLr);
    const Tensor& out = what == Output::y   ? r.y
                        : what == Output::w1 ? r.state.w1
                        : what == Output::w2 ? r.state.w2
                        : what == Output::s1 ? r.state.s1
                                             : r.state.s2;
    return what == Output::y ? out : cast(out, in[0].dtype());  // states are f32 on CUDA
  };
  row.reference = [=](auto& in) { return per_token_reference(in, chunk, kMaxLr, what); };
  // (The CUDA kernel has not run on a GPU yet; its f32 products differ from the CPU's in summation
  // order only, and the CPU's f32 error against f64 is 3.8e-6.)
  row.tol.cuda_f32 = 2e-5;
  return row;
}

}  // namespace

std::vector<OpCase> mlp_memory_cases() {
  OpCase main = memory_row("mlp_memory", 16, Output::y);
  for (int64_t T : {1024, 4096, 16384}) main.bench.push_back(inputs(1, T, 8, 64, 256, 64, true, false));
  main.flops = [](const std::vector<Shape>& s) {
    return flops::mlp_memory(s[0][0], s[0][1], s[0][2], s[0][3], s[6].back(), s[2][3], NeuralMemoryOptions{}.chunk,
                             flops::Pass::forward_backward);
  };
  return {std::move(main),
          memory_row("mlp_memory chunk 1", 1, Output::y),
          memory_row("mlp_memory chunk 64", 64, Output::y),
          memory_row("mlp_memory final w1", 16, Output::w1),
          memory_row("mlp_memory final w2", 16, Output::w2),
          memory_row("mlp_memory final s1", 16, Output::s1),
          memory_row("mlp_memory final s2", 16, Output::s2)};
}

}  // namespace eat::op_cases
