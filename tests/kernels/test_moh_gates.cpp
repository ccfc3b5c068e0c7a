// moh_gates (MoH's two-stage router): what the op table cannot say. Equal logits give every active
// head the gate 1 (the x h_s, x K and x 2 factors), top_k = R selects every routed head, ties go
// to the lower index, one shared head has the gate a_0, each row selects exactly K heads (the
// largest), routed_probs' gradient is a softmax's, the two outputs' gradients add, token rows may
// carry [B, T] dimensions, and bad inputs.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "base/error.h"
#include "framework/ops.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

Tensor constant(const Shape& shape, double value, DType dtype = DType::f64) { return Tensor::full(shape, value, dtype); }

std::vector<double> values(const Tensor& t) { return t.to_f64_vector(); }

}  // namespace

TEST_CASE("moh_gates: with all logits equal every active head's gate is 1 and the others 0") {
  // q = 1 / h_s, p = 1 / R, a = [1, 1]: h_s q = 1, K p / (K / R) = 1 for the first K routed heads.
  for (DType dtype : {DType::f64, DType::f32})
    for (const auto& [h_s, R, K] : std::vector<std::array<int64_t, 3>>{
             {0, 1, 1}, {0, 4, 2}, {1, 3, 1}, {3, 4, 4}, {6, 6, 3}, {2, 9, 5}, {4, 64, 7}}) {
      CAPTURE(std::string(dtype_name(dtype)));
      CAPTURE(h_s);
      CAPTURE(R);
      CAPTURE(K);
      const int64_t N = 3;
      const Tensor shared = h_s ? constant({N, h_s}, 0.7, dtype) : Tensor();
      const Tensor mix = h_s ? constant({N, 2}, -1.3, dtype) : Tensor();
      const MohGates g = moh_gates(shared, constant({N, R}, 2.5, dtype), mix, K);
      std::vector<double> want_gates, want_selected;
      for (int64_t n = 0; n < N; ++n) {
        want_gates.insert(want_gates.end(), static_cast<size_t>(h_s), 1.0);
        for (int64_t i = 0; i < R; ++i) {
          want_gates.push_back(i < K ? 1.0 : 0.0);
          want_selected.push_back(i < K ? 1.0 : 0.0);
        }
      }
      const double tol = dtype == DType::f64 ? 1e-15 : 1e-6;
      CHECK(rel_error(values(g.gates), want_gates) < tol);
      CHECK(values(g.selected) == want_selected);
      CHECK(rel_error(values(g.routed_probs), std::vector<double>(static_cast<size_t>(N * R), 1.0 / R)) < tol);
      CHECK(g.gates.dtype() == dtype);
      CHECK(g.routed_probs.dtype() == dtype);
      CHECK(g.selected.dtype() == dtype);
    }
}

TEST_CASE("moh_gates: top_k = R selects every routed head, whose gates are a_1 R p") {
  Generator gen(1);
  const int64_t N = 4, h_s = 2, R = 5;
  const Tensor shared = randn64({N, h_s}, gen, 1.5), routed = randn64({N, R}, gen, 1.5), mix = randn64({N, 2}, gen);
  const MohGates g = moh_gates(shared, routed, mix, R);
  CHECK(values(g.selected) == std::vector<double>(static_cast<size_t>(N * R), 1.0));
  const std::vector<double> gates = values(g.gates), p = values(g.routed_probs), m = values(mix);
  std::vector<double> got, want;
  for (int64_t n = 0; n < N; ++n) {
    const double a1 = 2 / (1 + std::exp(m[n * 2] - m[n * 2 + 1]));
    for (int64_t i = 0; i < R; ++i) {
      got.push_back(gates[n * (h_s + R) + h_s + i]);
      want.push_back(a1 * R * p[n * R + i]);
    }
  }
  CHECK(rel_error(got, want) < 1e-15);
}

TEST_CASE("moh_gates: equal routed logits are selected lowest index first, in f64 and f32") {
  // Row 0: a three-way tie at the top; row 1: second place tied between indices 0 and 3; row 2:
  // four equal logits above a fifth.
  const std::vector<double> logits = {0.5, 2, 2, 0.5, 2, 1, 3, -1, 1, 0.5, 1, 1, 1, 1, 0};
  struct Case {
    int64_t K;
    std::vector<double> selected;
  };
  for (DType dtype : {DType::f64, DType::f32})
    for (const Case& c : std::vector<Case>{{1, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}},
                                           {2, {0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0}},
                                           {3, {0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0}},
                                           {4, {1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0}}}) {
      CAPTURE(std::string(dtype_name(dtype)));
      CAPTURE(c.K);
      const Tensor routed = Tensor::from_vector<double>(logits, {3, 5}).to(dtype);
      const MohGates g = moh_gates(Tensor(), routed, Tensor(), c.K);
      CHECK(values(g.selected) == c.selected);
      // The routed gates stand alone with h_s = 0: nonzero exactly where selected.
      const std::vector<double> gates = values(g.gates);
      for (size_t i = 0; i < gates.size(); ++i) CHECK((gates[i] != 0) == (c.selected[i] != 0));
    }
}

TEST_CASE("moh_gates: one shared head's gate is a_0 (h_s softmax = 1), with no gradient to its logit") {
  Generator gen(2);
  const int64_t N = 6, R = 4;
  Tensor shared = randn64({N, 1}, gen, 1.5), routed = randn64({N, R}, gen, 1.5), mix = randn64({N, 2}, gen);
  const MohGates g = moh_gates(shared, routed, mix, 2);
  const std::vector<double> gates = values(g.gates), m = values(mix);
  for (int64_t n = 0; n < N; ++n) {
    CAPTURE(n);
    CHECK(gates[n * (1 + R)] == doctest::Approx(2 / (1 + std::exp(m[n * 2 + 1] - m[n * 2]))).epsilon(1e-15));
  }
  g.gates.backward(Tensor::randn(g.gates.shape(), gen, 1.0, DType::f64));
  CHECK(values(shared.grad()) == std::vector<double>(N, 0.0));
}

TEST_CASE("moh_gates: every row selects exactly K heads, the K largest logits") {
  Generator gen(3);
  const int64_t N = 50, R = 9;
  const Tensor routed = randn64({N, R}, gen, 1.5, false);
  const std::vector<double> x = values(routed);
  for (int64_t K : {1, 3, 8, 9}) {
    CAPTURE(K);
    const std::vector<double> sel = values(moh_gates(Tensor(), routed, Tensor(), K).selected);
    for (int64_t n = 0; n < N; ++n) {
      CAPTURE(n);
      int64_t count = 0;
      double lowest_in = INFINITY, highest_out = -INFINITY;
      for (int64_t i = 0; i < R; ++i) {
        const double v = sel[n * R + i], xi = x[n * R + i];
        CHECK((v == 0 || v == 1));
        count += v == 1;
        if (v == 1) lowest_in = std::min(lowest_in, xi);
        else highest_out = std::max(highest_out, xi);
      }
      CHECK(count == K);
      CHECK(lowest_in > highest_out);
    }
  }
}

TEST_CASE("moh_gates: routed_probs' gradient alone is a softmax's, and the gates' adds to it") {
  Generator gen(4);
  const int64_t N = 7, h_s = 3, R = 6, K = 3;
  auto leaves = [&](const std::vector<double>& s, const std::vector<double>& r, const std::vector<double>& m) {
    return std::array<Tensor, 3>{Tensor::from_vector<double>(s, {N, h_s}).requires_grad_(),
                                 Tensor::from_vector<double>(r, {N, R}).requires_grad_(),
                                 Tensor::from_vector<double>(m, {N, 2}).requires_grad_()};
  };
  const std::vector<double> s = values(randn64({N, h_s}, gen, 1.5, false)), r = values(randn64({N, R}, gen, 1.5, false));
  const std::vector<double> m = values(randn64({N, 2}, gen, 1.5, false));
  const Tensor dprobs = Tensor::randn({N, R}, gen, 1.0, DType::f64), dgates = Tensor::randn({N, h_s + R}, gen, 1.0, DType::f64);

  // routed_probs alone: the softmax op's backward for the routed logits, nothing for the others.
  auto a = leaves(s, r, m);
  moh_gates(a[0], a[1], a[2], K).routed_probs.backward(dprobs);
  Tensor x = Tensor::from_vector<double>(r, {N, R}).requires_grad_();
  softmax(x).backward(dprobs);
  CHECK(rel_error(a[1].grad(), x.grad()) < 1e-15);
  CHECK(values(a[0].grad()) == std::vector<double>(N * h_s, 0.0));
  CHECK(values(a[2].grad()) == std::vector<double>(N * 2, 0.0));

  // The gates alone, then both outputs in one backward: the sum of the two.
  auto b = leaves(s, r, m), both = leaves(s, r, m);
  moh_gates(b[0], b[1], b[2], K).gates.backward(dgates);
  const MohGates g = moh_gates(both[0], both[1], both[2], K);
  sum(add(sum(mul(g.gates, dgates)), sum(mul(g.routed_probs, dprobs)))).backward(Tensor::full({1}, 1.0, DType::f64));
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    const Tensor want = i == 1 ? add(b[1].grad(), a[1].grad()) : b[i].grad();
    CHECK(rel_error(both[i].grad(), want) < 1e-14);
  }
  CHECK(!g.selected.requires_grad());
}

TEST_CASE("moh_gates: token rows may carry [B, T] dimensions, and no rows give empty outputs") {
  Generator gen(5);
  const Tensor shared = randn64({2, 5, 2}, gen, 1.5, false), routed = randn64({2, 5, 6}, gen, 1.5, false);
  const Tensor mix = randn64({2, 5, 2}, gen, 1.5, false);
  const MohGates g = moh_gates(shared, routed, mix, 3);
  const MohGates flat = moh_gates(shared.reshape({10, 2}), routed.reshape({10, 6}), mix.reshape({10, 2}), 3);
  CHECK(g.gates.shape() == Shape{2, 5, 8});
  CHECK(g.routed_probs.shape() == Shape{2, 5, 6});
  CHECK(g.selected.shape() == Shape{2, 5, 6});
  CHECK(values(g.gates) == values(flat.gates));
  CHECK(values(g.selected) == values(flat.selected));
  const MohGates none = moh_gates(Tensor::zeros({0, 2}, DType::f64), Tensor::zeros({0, 6}, DType::f64),
                                 Tensor::zeros({0, 2}, DType::f64), 3);
  CHECK(none.gates.shape() == Shape{0, 8});
}

TEST_CASE("moh_gates: bad inputs name the op and the shapes") {
  Generator gen(6);
  const Tensor shared = randn64({4, 2}, gen), routed = randn64({4, 6}, gen), mix = randn64({4, 2}, gen);
  auto fails_with = [](auto&& f, const char* message) {
    CHECK_THROWS_WITH_AS(f(), doctest::Contains(message), Error);
  };
  fails_with([&] { moh_gates(randn64({3, 2}, gen), routed, mix, 2); },
             "moh_gates: shared_logits [3, 2] must be [4, 2] for routed_logits [4, 6]");
  fails_with([&] { moh_gates(shared, routed, randn64({4, 3}, gen), 2); },
             "moh_gates: mix_logits [4, 3] must be [4, 2] for routed_logits [4, 6]");
  fails_with([&] { moh_gates(shared, routed, Tensor(), 2); }, "moh_gates: mix_logits [N, 2] is required with h_s = 2");
  fails_with([&] { moh_gates(Tensor(), routed, mix, 2); }, "moh_gates: mix_logits f64[4, 2] cpu given without shared heads");
  fails_with([&] { moh_gates(shared, routed, mix, 0); }, "moh_gates: top_k = 0 must be in [1, R = 6]");
  fails_with([&] { moh_gates(shared, routed, mix, 7); }, "moh_gates: top_k = 7 must be in [1, R = 6]");
  fails_with([&] { moh_gates(shared, routed.to(DType::f32), mix, 2); }, "moh_gates: dtype mismatch");
  fails_with([&] { moh_gates(Tensor(), randn64({4, 65}, gen), Tensor(), 2); },
             "moh_gates: routed_logits [4, 65] has R = 65 routed heads; 1 to 64 are supported");
  fails_with([&] { moh_gates(Tensor(), randn64({4, 0}, gen), Tensor(), 1); }, "has R = 0 routed heads");
  fails_with([&] { moh_gates(Tensor(), Tensor(), Tensor(), 1); }, "moh_gates: undefined input tensor");
  fails_with([&] { moh_gates(Tensor(), Tensor::from_vector<int32_t>({1, 2}, {1, 2}), Tensor(), 1); },
             "moh_gates: needs a floating tensor");
}
