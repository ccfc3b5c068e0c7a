// summary_attention (RAT's attention over chunk summaries with a private key per query): what the
// op table cannot say. The two exact reductions (chunk 1 with the tokens as their own summaries is
// causal softmax attention, gradients included; a chunk longer than the sequence gives y = v),
// the chunk-0 rows, the strict mask (a query never sees its own chunk's summary), the
// sequence-parallel split (later queries with a query offset against all summaries), and bad
// inputs.
#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "base/error.h"
#include "framework/ops.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

struct Inputs {
  Tensor q, k, v, k_sum, v_sum;
};

// q, k [B, T, H, d], v [B, T, H, e] and C summaries, f64 leaves.
Inputs make_inputs(Generator& gen, int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t C) {
  return {randn64({B, T, H, d}, gen, 0.7), randn64({B, T, H, d}, gen, 0.7), randn64({B, T, H, e}, gen),
          randn64({B, C, H, d}, gen, 0.7), randn64({B, C, H, e}, gen)};
}

Tensor run(const Inputs& in, int64_t chunk, int64_t offset = 0) {
  return summary_attention(in.q, in.k, in.v, in.k_sum, in.v_sum, {.chunk = chunk, .query_offset = offset});
}

// Tokens [t0, t1) (axis 1) of x, as a new f64 tensor (a leaf when grad).
Tensor tokens(const Tensor& x, int64_t t0, int64_t t1, bool grad = false) {
  const std::vector<double> all = x.to_f64_vector();
  const int64_t B = x.size(0), T = x.size(1), row = x.numel() / (B * T);
  std::vector<double> part;
  for (int64_t b = 0; b < B; ++b)
    part.insert(part.end(), all.begin() + (b * T + t0) * row, all.begin() + (b * T + t1) * row);
  Tensor out = Tensor::from_vector<double>(part, {B, t1 - t0, x.size(2), x.size(3)});
  if (grad) out.requires_grad_();
  return out;
}

// Element-by-element equality of two tensors' values.
bool same_values(const Tensor& a, const Tensor& b) { return a.to_f64_vector() == b.to_f64_vector(); }

}  // namespace

TEST_CASE("summary_attention: chunk 1 with the tokens as their summaries is causal attention, gradients included") {
  // Query t then sees summaries j < t (the tokens before it) and its own key t: every key j <= t.
  Generator gen(1);
  for (const auto& [B, T, H, d, e] : std::vector<std::array<int64_t, 5>>{{2, 37, 3, 8, 5}, {1, 130, 1, 16, 16}}) {
    CAPTURE(T);
    Tensor q = randn64({B, T, H, d}, gen, 0.7), k = randn64({B, T, H, d}, gen, 0.7), v = randn64({B, T, H, e}, gen);
    Tensor y = summary_attention(q, k, v, k, v, {.chunk = 1});
    const Tensor r = Tensor::randn(y.shape(), gen, 1.0, DType::f64);
    y.backward(r);  // k and v get both paths' gradients: as own keys and as summaries
    const std::vector<double> y_sum = y.to_f64_vector(), dq = q.grad().to_f64_vector(), dk = k.grad().to_f64_vector(),
                              dv = v.grad().to_f64_vector();
    for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    Tensor want = attention(q, k, v);
    want.backward(r);
    CHECK(rel_error(y_sum, want.to_f64_vector()) < 1e-12);
    CHECK(rel_error(dq, q.grad().to_f64_vector()) < 1e-12);
    CHECK(rel_error(dk, k.grad().to_f64_vector()) < 1e-12);
    CHECK(rel_error(dv, v.grad().to_f64_vector()) < 1e-12);
  }
}

TEST_CASE("summary_attention: a chunk as long as the sequence gives y = v exactly, and so do the chunk-0 rows") {
  Generator gen(2);
  for (int64_t chunk : {7, 8, 100}) {  // T = 7: one whole chunk; longer chunks
    const Inputs in = make_inputs(gen, 2, 7, 3, 4, 5, 1);
    CHECK(same_values(run(in, chunk), in.v));
  }
  // Chunk 4 over 10 tokens: rows 0-3 (chunk 0) see no summary.
  const Inputs in = make_inputs(gen, 2, 10, 3, 4, 5, 3);
  CHECK(same_values(tokens(run(in, 4), 0, 4), tokens(in.v, 0, 4)));
  CHECK(!same_values(tokens(run(in, 4), 4, 10), tokens(in.v, 4, 10)));
  // Without summaries (C = 0) no row sees one; their gradients are empty.
  const Inputs none = make_inputs(gen, 1, 9, 2, 3, 2, 0);
  Tensor y = run(none, 4);
  CHECK(same_values(y, none.v));
  y.backward(Tensor::full(y.shape(), 1.0, DType::f64));
  CHECK(none.k_sum.grad().numel() == 0);
  CHECK(same_values(none.v.grad(), Tensor::full(y.shape(), 1.0, DType::f64)));
  CHECK(same_values(none.q.grad(), Tensor::zeros(none.q.shape(), DType::f64)));
}

TEST_CASE("summary_attention: an empty sequence gives an empty output and zero summary gradients") {
  Generator gen(7);
  const Inputs in = make_inputs(gen, 2, 0, 3, 4, 5, 2);
  Tensor y = run(in, 4, 8);
  CHECK(y.shape() == Shape{2, 0, 3, 5});
  y.backward(Tensor::zeros(y.shape(), DType::f64));
  CHECK(same_values(in.k_sum.grad(), Tensor::zeros(in.k_sum.shape(), DType::f64)));
  CHECK(same_values(in.v_sum.grad(), Tensor::zeros(in.v_sum.shape(), DType::f64)));
}

TEST_CASE("summary_attention: a query never sees its own chunk's summary, nor a later one") {
  // Chunk 4, 14 tokens, summaries of chunks 0-3. Changing summary c must leave every query of
  // chunks 0 .. c unchanged and change those of chunk c + 1 on (the mask is j < c(t), strictly).
  Generator gen(3);
  const int64_t chunk = 4, T = 14, C = 4;
  const Inputs in = make_inputs(gen, 1, T, 2, 3, 4, C);
  const Tensor y = run(in, chunk);
  for (int64_t c = 0; c < C; ++c) {
    CAPTURE(c);
    std::vector<double> ks = in.k_sum.to_f64_vector(), vs = in.v_sum.to_f64_vector();
    const int64_t kw = ks.size() / C, vw = vs.size() / C;  // one summary's values (B = 1)
    for (int64_t i = 0; i < kw; ++i) ks[c * kw + i] += 0.5;
    for (int64_t i = 0; i < vw; ++i) vs[c * vw + i] -= 0.5;
    const Inputs changed{in.q, in.k, in.v, Tensor::from_vector<double>(ks, in.k_sum.shape()),
                         Tensor::from_vector<double>(vs, in.v_sum.shape())};
    const Tensor y2 = run(changed, chunk);
    const int64_t end = std::min(T, (c + 1) * chunk);
    CHECK(same_values(tokens(y2, 0, end), tokens(y, 0, end)));
    if (end < T) CHECK(rel_error(tokens(y2, end, T), tokens(y, end, T)) > 1e-3);
  }
}

TEST_CASE("summary_attention: later queries with a query offset equal the rows of the whole call, and split gradients add up") {
  // Sequence parallelism: a rank holding tokens [T0, T) runs its queries with query_offset = T0
  // against every summary; the summaries' gradients of all ranks sum to the whole call's.
  Generator gen(4);
  const int64_t T = 45, chunk = 4, C = 12;  // the last summary (chunk 11) is seen by nobody
  const Inputs in = make_inputs(gen, 2, T, 3, 5, 3, C);
  Tensor y = run(in, chunk);
  const Tensor r = Tensor::randn(y.shape(), gen, 1.0, DType::f64);
  y.backward(r);
  for (int64_t T0 : {6, 8, 44}) {  // mid-chunk, on a chunk boundary, the last token alone
    CAPTURE(T0);
    std::vector<double> dks(in.k_sum.numel(), 0.0), dvs(in.v_sum.numel(), 0.0);
    for (const auto& [t0, t1] : std::vector<std::pair<int64_t, int64_t>>{{0, T0}, {T0, T}}) {
      const Inputs part{tokens(in.q, t0, t1, true), tokens(in.k, t0, t1, true), tokens(in.v, t0, t1, true),
                        in.k_sum.detach().requires_grad_(), in.v_sum.detach().requires_grad_()};
      Tensor y_part = run(part, chunk, t0);
      CHECK(rel_error(y_part, tokens(y, t0, t1)) < 1e-14);
      y_part.backward(tokens(r, t0, t1));
      CHECK(rel_error(part.q.grad(), tokens(in.q.grad(), t0, t1)) < 1e-14);
      CHECK(rel_error(part.k.grad(), tokens(in.k.grad(), t0, t1)) < 1e-14);
      CHECK(rel_error(part.v.grad(), tokens(in.v.grad(), t0, t1)) < 1e-14);
      const std::vector<double> pk = part.k_sum.grad().to_f64_vector(), pv = part.v_sum.grad().to_f64_vector();
      for (size_t i = 0; i < dks.size(); ++i) dks[i] += pk[i];
      for (size_t i = 0; i < dvs.size(); ++i) dvs[i] += pv[i];
    }
    CHECK(rel_error(dks, in.k_sum.grad().to_f64_vector()) < 1e-14);
    CHECK(rel_error(dvs, in.v_sum.grad().to_f64_vector()) < 1e-14);
  }
}

TEST_CASE("summary_attention: an explicit scale replaces 1/sqrt(d)") {
  // Scale 0.25 on q gives the logits of the default 1/sqrt(4) = 0.5 on q / 2.
  Generator gen(5);
  const Inputs in = make_inputs(gen, 1, 9, 2, 4, 3, 3);
  SummaryAttentionOptions quarter{.chunk = 3};
  quarter.scale = 0.25;
  std::vector<double> half_q = in.q.to_f64_vector();
  for (double& x : half_q) x *= 0.5;
  const Tensor want = summary_attention(Tensor::from_vector<double>(half_q, in.q.shape()), in.k, in.v, in.k_sum,
                                        in.v_sum, {.chunk = 3});
  CHECK(rel_error(summary_attention(in.q, in.k, in.v, in.k_sum, in.v_sum, quarter), want) < 1e-15);
}

TEST_CASE("summary_attention: bad inputs name the op, the tensor and the expected shape") {
  Generator gen(6);
  const Inputs in = make_inputs(gen, 2, 6, 3, 4, 5, 2);
  auto call = [&](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& ks, const Tensor& vs,
                  SummaryAttentionOptions o = {}) { return summary_attention(q, k, v, ks, vs, o); };
  CHECK_THROWS_WITH_AS(call(in.q, randn64({2, 6, 3, 5}, gen), in.v, in.k_sum, in.v_sum),
                       doctest::Contains("summary_attention: q [2, 6, 3, 4] and k [2, 6, 3, 5] must have the same shape"),
                       Error);
  CHECK_THROWS_WITH_AS(call(in.q, in.k, randn64({2, 5, 3, 5}, gen), in.k_sum, in.v_sum),
                       doctest::Contains("in batch, time and heads"), Error);
  CHECK_THROWS_WITH_AS(call(in.q, in.k, in.v, randn64({2, 2, 3, 3}, gen), in.v_sum),
                       doctest::Contains("summary_attention: k_sum [2, 2, 3, 3] must be [B, C, H, d] for q [2, 6, 3, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(call(in.q, in.k, in.v, randn64({1, 2, 3, 4}, gen), in.v_sum),
                       doctest::Contains("k_sum [1, 2, 3, 4] must be [B, C, H, d]"), Error);
  CHECK_THROWS_WITH_AS(call(in.q, in.k, in.v, in.k_sum, randn64({2, 3, 3, 5}, gen)),
                       doctest::Contains("summary_attention: v_sum [2, 3, 3, 5] must be [B, C, H, e] = [2, 2, 3, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(call(in.q, in.k, in.v, in.k_sum, randn64({2, 2, 3}, gen)), doctest::Contains("summary_attention"),
                       Error);
  CHECK_THROWS_WITH_AS(call(in.q, in.k, in.v, in.k_sum, in.v_sum.detach().to(DType::f32)),
                       doctest::Contains("summary_attention"), Error);
  CHECK_THROWS_WITH_AS(call(in.q, in.k, in.v, in.k_sum, in.v_sum, {.chunk = 0}),
                       doctest::Contains("summary_attention: chunk must be >= 1, got 0"), Error);
  CHECK_THROWS_WITH_AS(call(in.q, in.k, in.v, in.k_sum, in.v_sum, {.chunk = 4, .query_offset = -1}),
                       doctest::Contains("summary_attention: query_offset must be >= 0, got -1"), Error);
}
