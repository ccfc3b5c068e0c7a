// gated_attention (MoH's query-sparse attention with gated heads): what the op table cannot say.
// Zero gates skip their (token, head) pairs yet the result equals dense attention times the gates
// (gradients included, dgate where the gate is non-zero; 0 where it is 0); all gates 1 is softmax
// attention; all gates 0 is no work and no gradient; an inactive query's q is never read; and bad
// inputs.
#include <vector>

#include "base/error.h"
#include "framework/ops.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

struct Inputs {
  Tensor q, k, v, gates;
};

// q [B, T, H, d], k [B, Tk, H, d], v [B, Tk, H, e] and gates [B, T, H] with every `period`-th
// (token, head) pair (along a pattern that differs between heads) exactly 0 (period 0: none).
Inputs make_inputs(Generator& gen, int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t period,
                   int64_t Tk = 0) {
  if (Tk == 0) Tk = T;
  std::vector<double> g = randn64({B, T, H}, gen, 1.0, false).to_f64_vector();
  for (int64_t i = 0; i < static_cast<int64_t>(g.size()); ++i)
    if (period > 0 && (i * 7 + i / H) % period == 0) g[static_cast<size_t>(i)] = 0.0;
  return {randn64({B, T, H, d}, gen), randn64({B, Tk, H, d}, gen), randn64({B, Tk, H, e}, gen),
          Tensor::from_vector<double>(g, {B, T, H}).requires_grad_()};
}

// attention(q, k, v) times the gates, through the dense ops.
Tensor dense_times_gates(const Inputs& in, const AttentionOptions& o) {
  const Tensor out = attention(in.q, in.k, in.v, o);
  const Shape& s = in.gates.shape();
  return mul(out, tile_last(reshape(in.gates, {s[0], s[1], s[2], 1}), out.size(3)));
}

struct Result {
  std::vector<double> y, dq, dk, dv, dgates;
};

Result run(const Inputs& in, const Tensor& y_call, const Tensor& dy) {
  for (const Tensor* t : {&in.q, &in.k, &in.v, &in.gates}) const_cast<Tensor*>(t)->zero_grad();
  Tensor y = y_call;
  y.backward(dy);
  // The gates have no gradient when the call does not read them (plain attention).
  const Tensor dgates = in.gates.grad();
  return {y.to_f64_vector(), in.q.grad().to_f64_vector(), in.k.grad().to_f64_vector(), in.v.grad().to_f64_vector(),
          dgates.defined() ? dgates.to_f64_vector() : std::vector<double>{}};
}

bool all_zero(const std::vector<double>& x) {
  for (double v : x)
    if (v != 0.0) return false;
  return true;
}

AttentionOptions window(int64_t w) {
  AttentionOptions o;
  o.window_left = w;
  return o;
}

}  // namespace

TEST_CASE("gated_attention: zero gates skip their pairs, yet equal dense attention times the gates") {
  Generator gen(1);
  AttentionOptions full;
  full.causal = false;
  AttentionOptions offset;
  offset.query_offset = 29;
  struct Case {
    AttentionOptions options;
    int64_t period, Tk;
  };
  // Half and a third of the pairs zero over three query tiles; a narrow window, so that active
  // rows far apart leave key tiles no row of theirs sees; full attention; a later rank's queries.
  for (const Case& c : std::vector<Case>{{{}, 2, 0}, {{}, 3, 0}, {window(5), 2, 0}, {full, 3, 0}, {offset, 2, 150 + 40}}) {
    CAPTURE(c.period);
    CAPTURE(c.options.window_left);
    CAPTURE(c.options.query_offset);
    const Inputs in = make_inputs(gen, 2, 150, 3, 8, 5, c.period, c.Tk);
    const Tensor dy = Tensor::randn({2, 150, 3, 5}, gen, 1.0, DType::f64);
    const Result got = run(in, gated_attention(in.q, in.k, in.v, in.gates, c.options), dy);
    const Result want = run(in, dense_times_gates(in, c.options), dy);
    CHECK(rel_error(got.y, want.y) < 1e-12);
    CHECK(rel_error(got.dq, want.dq) < 1e-12);
    CHECK(rel_error(got.dk, want.dk) < 1e-12);
    CHECK(rel_error(got.dv, want.dv) < 1e-12);
    // dgate = dy . O where the gate is non-zero; 0 where it is 0 (nothing was computed there).
    const std::vector<double> g = in.gates.to_f64_vector();
    std::vector<double> want_dg = want.dgates;
    for (size_t i = 0; i < g.size(); ++i)
      if (g[i] == 0.0) {
        CHECK(got.dgates[i] == 0.0);
        want_dg[i] = 0.0;
      }
    CHECK(rel_error(got.dgates, want_dg) < 1e-12);
  }
}

TEST_CASE("gated_attention: all gates 1 is softmax attention exactly, gradients included") {
  Generator gen(2);
  for (const AttentionOptions& o : {AttentionOptions{}, window(17)}) {
    Inputs in = make_inputs(gen, 2, 140, 2, 16, 8, 0);
    in.gates = Tensor::full({2, 140, 2}, 1.0, DType::f64).requires_grad_();
    const Tensor dy = Tensor::randn({2, 140, 2, 8}, gen, 1.0, DType::f64);
    const Result got = run(in, gated_attention(in.q, in.k, in.v, in.gates, o), dy);
    const Result want = run(in, attention(in.q, in.k, in.v, o), dy);
    CHECK(rel_error(got.y, want.y) < 1e-14);
    CHECK(rel_error(got.dq, want.dq) < 1e-14);
    CHECK(rel_error(got.dk, want.dk) < 1e-14);
    CHECK(rel_error(got.dv, want.dv) < 1e-14);
  }
}

TEST_CASE("gated_attention: all gates 0 give y = 0 and no gradient") {
  Generator gen(3);
  Inputs in = make_inputs(gen, 2, 70, 3, 4, 6, 0);
  in.gates = Tensor::zeros({2, 70, 3}, DType::f64).requires_grad_();
  const Result got = run(in, gated_attention(in.q, in.k, in.v, in.gates), Tensor::randn({2, 70, 3, 6}, gen, 1.0, DType::f64));
  CHECK(all_zero(got.y));
  CHECK(all_zero(got.dq));
  CHECK(all_zero(got.dk));
  CHECK(all_zero(got.dv));
  CHECK(all_zero(got.dgates));
}

TEST_CASE("gated_attention: an inactive query's q is never read") {
  // Changing the q row of a pair whose gate is 0 changes no output and no gradient, bit for bit.
  Generator gen(4);
  const int64_t B = 1, T = 90, H = 2, d = 4, e = 3;
  const Inputs in = make_inputs(gen, B, T, H, d, e, 2);
  const std::vector<double> g = in.gates.to_f64_vector();
  int64_t t0 = 0;  // the first inactive pair of head 1 past the first tile
  while (g[static_cast<size_t>(t0 * H + 1)] != 0.0 || t0 < 64) ++t0;
  const Tensor dy = Tensor::randn({B, T, H, e}, gen, 1.0, DType::f64);
  const Result base = run(in, gated_attention(in.q, in.k, in.v, in.gates), dy);
  std::vector<double> q = in.q.to_f64_vector();
  for (int64_t c = 0; c < d; ++c) q[static_cast<size_t>((t0 * H + 1) * d + c)] = 1e300;
  const Inputs changed{Tensor::from_vector<double>(q, in.q.shape()).requires_grad_(), in.k, in.v, in.gates};
  const Result got = run(changed, gated_attention(changed.q, changed.k, changed.v, changed.gates), dy);
  CHECK(got.y == base.y);
  CHECK(got.dq == base.dq);
  CHECK(got.dk == base.dk);
  CHECK(got.dv == base.dv);
  CHECK(got.dgates == base.dgates);
}

TEST_CASE("gated_attention: bad inputs name the op and the shapes") {
  Generator gen(5);
  const Inputs in = make_inputs(gen, 2, 6, 3, 4, 5, 2);
  CHECK_THROWS_WITH_AS(gated_attention(in.q, in.k, in.v, randn64({2, 6, 2}, gen)),
                       doctest::Contains("gated_attention: gates [2, 6, 2] must be [B, T, H] = [2, 6, 3] for q [2, 6, 3, 4]"),
                       Error);
  CHECK_THROWS_WITH_AS(gated_attention(in.q, in.k, in.v, randn64({2, 6, 3, 1}, gen)),
                       doctest::Contains("gated_attention: gates [2, 6, 3, 1] must be [B, T, H]"), Error);
  CHECK_THROWS_WITH_AS(gated_attention(in.q, in.k, in.v, in.gates.detach().to(DType::f32)),
                       doctest::Contains("gated_attention"), Error);
  AttentionOptions naive;
  naive.impl = AttentionImpl::naive;
  CHECK_THROWS_WITH_AS(gated_attention(in.q, in.k, in.v, in.gates, naive),
                       doctest::Contains("gated_attention: only the tiled kernels"), Error);
  CHECK_THROWS_WITH_AS(gated_attention(in.q, randn64({2, 6, 3, 5}, gen), in.v, in.gates),
                       doctest::Contains("gated_attention: q [2, 6, 3, 4] and k [2, 6, 3, 5] must have the same shape"),
                       Error);
}

TEST_CASE("gated_attention: no queries give an empty output and zero key gradients") {
  // A rank without queries of its own still holds keys (keys longer than the queries).
  Generator gen(6);
  Inputs in = make_inputs(gen, 2, 0, 3, 4, 5, 0, 9);
  AttentionOptions o;
  o.query_offset = 0;
  o.causal = false;
  const Result got = run(in, gated_attention(in.q, in.k, in.v, in.gates, o), Tensor::zeros({2, 0, 3, 5}, DType::f64));
  CHECK(got.y.empty());
  CHECK(got.dk.size() == 2 * 9 * 3 * 4);
  CHECK(all_zero(got.dk));
  CHECK(all_zero(got.dv));
}
