// decayed_state_readout: the incoming-state term of decayed linear attention.
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

TEST_CASE("state readout: gradients, f32 vs f64, bad shapes") {
  Generator gen(2);
  auto fn = [](const std::vector<Tensor>& in) { return decayed_state_readout(in[0], in[1], {0.8, 0.3}); };
  CHECK(gradcheck("state readout", fn, {randn64({2, 5, 2, 3}, gen), randn64({2, 2, 3, 4}, gen)}) <= 1.0);
  CHECK(gradcheck("state readout", fn, {randn64({1, 1, 2, 1}, gen), randn64({1, 2, 1, 1}, gen)}) <= 1.0);
  CHECK(f32_vs_f64(fn, {randn64({2, 40, 2, 16}, gen), randn64({2, 2, 16, 8}, gen)}) < 1e-6);
  Tensor q = randn64({1, 3, 2, 4}, gen);
  CHECK_THROWS_WITH_AS(decayed_state_readout(q, randn64({1, 2, 5, 4}, gen), {0.5, 0.5}),
                       doctest::Contains("state [1, 2, 5, 4] does not match q [1, 3, 2, 4]"), Error);
  CHECK_THROWS_WITH_AS(decayed_state_readout(q, randn64({1, 2, 4, 4}, gen), {0.5}), doctest::Contains("1 decay values for 2 heads"),
                       Error);
}

TEST_CASE("state sum: equals lightning_attention's final state from a zero start, gradients, f32, bad shapes") {
  Generator gen(3);
  const std::vector<double> decay = {0.5, 0.97, 1.0};
  for (int64_t T : {1, 9, 70}) {  // one token, under one block, several blocks of the chunked kernel
    CAPTURE(T);
    Tensor q = randn64({2, T, 3, 4}, gen, 1.0, false), k = randn64({2, T, 3, 4}, gen, 1.0, false),
           v = randn64({2, T, 3, 5}, gen, 1.0, false);
    CHECK(rel_error(decayed_state_sum(k, v, decay), lightning_attention(q, k, v, decay).second) < 1e-13);
  }
  auto fn = [](const std::vector<Tensor>& in) { return decayed_state_sum(in[0], in[1], {0.8, 0.3}); };
  CHECK(gradcheck("state sum", fn, {randn64({2, 5, 2, 3}, gen), randn64({2, 5, 2, 4}, gen)}) <= 1.0);
  CHECK(f32_vs_f64(fn, {randn64({2, 40, 2, 16}, gen), randn64({2, 40, 2, 8}, gen)}) < 1e-6);
  CHECK_THROWS_WITH_AS(decayed_state_sum(randn64({1, 3, 2, 4}, gen), randn64({1, 4, 2, 4}, gen), {0.5, 0.5}),
                       doctest::Contains("v [1, 4, 2, 4] must share B, T, H with k [1, 3, 2, 4]"), Error);
  CHECK_THROWS_WITH_AS(decayed_state_sum(randn64({1, 3, 2, 4}, gen), randn64({1, 3, 2, 4}, gen), {1.5, 0.5}),
                       doctest::Contains("decay 1.5 is outside (0, 1]"), Error);
}
