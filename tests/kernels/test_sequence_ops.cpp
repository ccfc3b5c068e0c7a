// Embedding, RoPE and the causal short convolution.
#include <cmath>

#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("embedding: rows by id, repeated ids accumulate gradient, bad ids named") {
  Generator gen(1);
  Tensor w = randn64({7, 5}, gen);
  Tensor ids = Tensor::from_vector<int32_t>({3, 0, 3, 6, 3, 1}, {2, 3});
  Tensor y = embedding(ids, w);
  CHECK(y.shape() == Shape{2, 3, 5});
  auto wv = w.to_f64_vector(), yv = y.to_f64_vector();
  for (int j = 0; j < 5; ++j) CHECK(yv[3 * 5 + j] == wv[6 * 5 + j]);
  CHECK(gradcheck("embedding", [&](auto& in) { return embedding(ids, in[0]); }, {w}) <= 1.0);
  Tensor ids64 = Tensor::from_vector<int64_t>({1, 1, 1}, {3});
  CHECK(gradcheck("embedding i64", [&](auto& in) { return embedding(ids64, in[0]); }, {randn64({2, 70}, gen)}) <= 1.0);
  CHECK(f32_vs_f64([&](auto& in) { return embedding(ids, in[0]); }, {randn64({7, 40}, gen)}) < 1e-7);
  CHECK_THROWS_WITH_AS(embedding(Tensor::from_vector<int32_t>({2, 7}, {2}), w),
                       doctest::Contains("embedding: id 7 at position 1 is outside [0, 7)"), Error);
  CHECK_THROWS_WITH_AS(embedding(Tensor::from_vector<double>({1.0}, {1}), w), doctest::Contains("must be i32 or i64"), Error);
}

TEST_CASE("rope: rotate-half against the formula, offsets, relative positions, gradients") {
  Generator gen(2);
  const int64_t B = 2, T = 5, H = 3, d = 6;
  Tensor x = randn64({B, T, H, d}, gen, 1.0, false);
  auto xv = x.to_f64_vector(), yv = rope(x, 100.0, 7).to_f64_vector();
  double worst = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < d / 2; ++i) {
          const int64_t base = ((b * T + t) * H + h) * d;
          double a = (7 + t) * std::pow(100.0, -2.0 * i / d);
          double y1 = xv[base + i] * std::cos(a) - xv[base + i + d / 2] * std::sin(a);
          double y2 = xv[base + i + d / 2] * std::cos(a) + xv[base + i] * std::sin(a);
          worst = std::max({worst, std::abs(yv[base + i] - y1), std::abs(yv[base + i + d / 2] - y2)});
        }
  CHECK(worst < 1e-14);
  // The tail of a sequence with the right offset equals the tail of the whole sequence.
  Tensor x1 = randn64({1, 8, 1, 4}, gen, 1.0, false);
  Tensor full = rope(x1, 10000.0, 0);
  auto x1v = x1.to_f64_vector();
  Tensor part = rope(Tensor::from_vector<double>(std::vector<double>(x1v.begin() + 12, x1v.end()), {1, 5, 1, 4}), 10000.0, 3);
  auto fv = full.to_f64_vector(), pv = part.to_f64_vector();
  for (size_t i = 0; i < pv.size(); ++i) CHECK(pv[i] == doctest::Approx(fv[12 + i]).epsilon(1e-15));
  // <rope(q)_t, rope(k)_s> depends on t - s only.
  Tensor q = randn64({1, 1, 1, 8}, gen, 1.0, false), k = randn64({1, 1, 1, 8}, gen, 1.0, false);
  auto dot_at = [&](int64_t t, int64_t s) {
    auto a = rope(q, 10000.0, t).to_f64_vector(), b = rope(k, 10000.0, s).to_f64_vector();
    double r = 0;
    for (int i = 0; i < 8; ++i) r += a[i] * b[i];
    return r;
  };
  CHECK(dot_at(5, 2) == doctest::Approx(dot_at(1003, 1000)).epsilon(1e-12));
  auto fn = [](auto& in) { return rope(in[0], 500.0, 3); };
  CHECK(gradcheck("rope", fn, {randn64({2, 3, 2, 4}, gen)}) <= 1.0);
  CHECK(f32_vs_f64(fn, {randn64({1, 9, 2, 16}, gen)}) < 1e-6);
  CHECK_THROWS_WITH_AS(rope(randn64({1, 2, 1, 5}, gen)), doctest::Contains("rope: head dimension must be even"), Error);
}

TEST_CASE("short_conv: causal depthwise convolution against the sum, gradients for every k") {
  Generator gen(3);
  for (int64_t k : {1, 3, 4, 9}) {
    CAPTURE(k);
    const int64_t B = 2, T = 6, C = 5;
    Tensor x = randn64({B, T, C}, gen, 1.0, false), w = randn64({C, k}, gen, 1.0, false), bias = randn64({C}, gen, 1.0, false);
    auto xv = x.to_f64_vector(), wv = w.to_f64_vector(), bv = bias.to_f64_vector();
    auto yv = short_conv(x, w, bias).to_f64_vector();
    double worst = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
          double s = bv[c];
          for (int64_t i = 0; i < k; ++i) {
            int64_t src = t - k + 1 + i;
            if (src >= 0) s += wv[c * k + i] * xv[(b * T + src) * C + c];
          }
          worst = std::max(worst, std::abs(s - yv[(b * T + t) * C + c]));
        }
    CHECK(worst < 1e-14);
    auto fn = [](auto& in) { return short_conv(in[0], in[1], in[2]); };
    CHECK(gradcheck("short_conv", fn, {randn64({B, T, C}, gen), randn64({C, k}, gen), randn64({C}, gen)}) <= 1.0);
    CHECK(gradcheck("short_conv no bias", [](auto& in) { return short_conv(in[0], in[1]); },
                    {randn64({1, 1, 3}, gen), randn64({3, k}, gen)}) <= 1.0);
  }
  auto fn = [](auto& in) { return short_conv(in[0], in[1], in[2]); };
  CHECK(f32_vs_f64(fn, {randn64({3, 50, 20}, gen), randn64({20, 4}, gen), randn64({20}, gen)}) < 1e-6);
  Tensor x = randn64({1, 4, 3}, gen);
  CHECK_THROWS_WITH_AS(short_conv(x, randn64({4, 3}, gen)), doctest::Contains("short_conv: weight [4, 3] must be [C, k] with C = 3"),
                       Error);
  CHECK_THROWS_WITH_AS(short_conv(x, randn64({3, 2}, gen), randn64({2}, gen)), doctest::Contains("bias [2] must be [3]"), Error);
}

TEST_CASE("cross_entropy: fused log-softmax against the definition, ignored positions, gradients") {
  Generator gen(4);
  const int64_t N = 6, V = 13;
  Tensor logits = randn64({N, V}, gen, 3.0, false);
  Tensor targets = Tensor::from_vector<int64_t>({4, -100, 12, 0, 4, -100}, {N});
  auto lv = logits.to_f64_vector();
  double want = 0;
  int counted = 0;
  for (int64_t i = 0; i < N; ++i) {
    int64_t t = targets.data<int64_t>()[i];
    if (t == -100) continue;
    double z = 0;
    for (int64_t j = 0; j < V; ++j) z += std::exp(lv[i * V + j]);
    want += std::log(z) - lv[i * V + t];
    ++counted;
  }
  want /= counted;
  CHECK(cross_entropy(logits, targets).item() == doctest::Approx(want).epsilon(1e-14));
  auto fn = [&](auto& in) { return cross_entropy(in[0], targets); };
  CHECK(gradcheck("cross_entropy", fn, {randn64({N, V}, gen, 2.0)}) <= 1.0);
  Tensor t3 = Tensor::from_vector<int32_t>({1, 2, 0, 3, 3, 1}, {2, 3});
  CHECK(gradcheck("cross_entropy 3d", [&](auto& in) { return cross_entropy(in[0], t3); }, {randn64({2, 3, 4}, gen)}) <= 1.0);
  CHECK(f32_vs_f64(fn, {randn64({N, V}, gen, 2.0)}) < 1e-6);
  // Every position ignored: loss 0 and gradient 0, not NaN.
  Tensor none = Tensor::from_vector<int64_t>({-100, -100}, {2});
  Tensor l2 = randn64({2, V}, gen);
  Tensor loss = cross_entropy(l2, none);
  CHECK(loss.item() == 0.0);
  loss.backward();
  for (double g : l2.grad().to_f64_vector()) CHECK(g == 0.0);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector<int64_t>({1, 2, 13, 0, 0, 0}, {N})),
                       doctest::Contains("cross_entropy: target 13 at position 2 is outside [0, 13)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector<int64_t>({1, 2}, {2})),
                       doctest::Contains("targets [2] do not match logits [6, 13]"), Error);
}
