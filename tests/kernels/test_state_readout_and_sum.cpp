// decayed_state_readout (the incoming-state term of decayed linear attention) against its
// definition, and the bad inputs of it and of decayed_state_sum.
#include <cmath>

#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("state readout: against the definition and the state term of lightning_attention (f64)") {
  Generator gen(1);
  const int64_t B = 2, T = 9, H = 3, d = 4, e = 5;
  std::vector<double> decay = {0.5, 0.97, 1.0};
  Tensor q = randn64({B, T, H, d}, gen, 1.0, false), S = randn64({B, H, d, e}, gen, 1.0, false);
  auto o = decayed_state_readout(q, S, decay).to_f64_vector();
  auto qv = q.to_f64_vector(), sv = S.to_f64_vector();
  double worst = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < e; ++j) {
          double want = 0;
          for (int64_t i = 0; i < d; ++i) want += qv[((b * T + t) * H + h) * d + i] * sv[((b * H + h) * d + i) * e + j];
          want *= std::pow(decay[h], t + 1);
          worst = std::max(worst, std::abs(want - o[((b * T + t) * H + h) * e + j]));
        }
  CHECK(worst < 1e-13);
  // lightning(q, k, v, S) = lightning(q, k, v) + readout(q, S).
  Tensor k = randn64({B, T, H, d}, gen, 1.0, false), v = randn64({B, T, H, e}, gen, 1.0, false);
  Tensor with_state = lightning_attention(q, k, v, decay, S).first;
  Tensor without = lightning_attention(q, k, v, decay).first;
  CHECK(rel_error(add(without, decayed_state_readout(q, S, decay)), with_state) < 1e-13);
}

TEST_CASE("state readout: bad shapes and decays are named") {
  // Gradients and f32 of both ops, and the state sum against lightning_attention's final state:
  // the op table (test_op_table.cpp).
  Generator gen(2);
  Tensor q = randn64({1, 3, 2, 4}, gen);
  CHECK_THROWS_WITH_AS(decayed_state_readout(q, randn64({1, 2, 5, 4}, gen), {0.5, 0.5}),
                       doctest::Contains("state [1, 2, 5, 4] does not match q [1, 3, 2, 4]"), Error);
  CHECK_THROWS_WITH_AS(decayed_state_readout(q, randn64({1, 2, 4, 4}, gen), {0.5}), doctest::Contains("1 decay values for 2 heads"),
                       Error);
}

TEST_CASE("state sum: bad shapes and decays are named") {
  Generator gen(3);
  CHECK_THROWS_WITH_AS(decayed_state_sum(randn64({1, 3, 2, 4}, gen), randn64({1, 4, 2, 4}, gen), {0.5, 0.5}),
                       doctest::Contains("v [1, 4, 2, 4] must share B, T, H with k [1, 3, 2, 4]"), Error);
  CHECK_THROWS_WITH_AS(decayed_state_sum(randn64({1, 3, 2, 4}, gen), randn64({1, 3, 2, 4}, gen), {1.5, 0.5}),
                       doctest::Contains("decay 1.5 is outside (0, 1]"), Error);
}
