// Attention: the naive kernel against a triple-loop f64 reference, the tiled kernel against the
// naive one (forward and all gradients), finite-difference gradients, f32 vs f64, determinism.
#include <cmath>

#include "framework/error.h"
#include "gradcheck.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_flops.h"

using namespace eat;
using namespace eat::test;

namespace {

// o[b,t,h] = sum_s softmax_s(scale q.k over visible s) v[b,s,h], by definition.
std::vector<double> reference(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t window) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), d = q.size(3), e = v.size(3);
  auto Q = q.to_f64_vector(), K = k.to_f64_vector(), V = v.to_f64_vector();
  std::vector<double> o(static_cast<size_t>(B * T * H * e), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> w(static_cast<size_t>(T), 0.0);
        double m = -INFINITY, z = 0;
        for (int64_t s = 0; s < T; ++s) {
          bool visible = !causal || (s <= t && (window < 0 || s >= t - window));
          if (!visible) {
            w[s] = -INFINITY;
            continue;
          }
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += Q[((b * T + t) * H + h) * d + i] * K[((b * T + s) * H + h) * d + i];
          w[s] = dot * scale;
          m = std::max(m, w[s]);
        }
        for (int64_t s = 0; s < T; ++s) z += w[s] == -INFINITY ? 0 : std::exp(w[s] - m);
        for (int64_t s = 0; s < T; ++s) {
          if (w[s] == -INFINITY) continue;
          double p = std::exp(w[s] - m) / z;
          for (int64_t i = 0; i < e; ++i) o[((b * T + t) * H + h) * e + i] += p * V[((b * T + s) * H + h) * e + i];
        }
      }
  return o;
}

AttentionOptions opts(AttentionImpl impl, bool causal, int64_t window) {
  AttentionOptions o;
  o.impl = impl;
  o.causal = causal;
  o.window_left = window;
  return o;
}

}  // namespace

TEST_CASE("attention: naive and tiled forward against the definition (f64)") {
  Generator gen(1);
  struct Case {
    int64_t B, T, H, d, e, window;
    bool causal;
  };
  for (Case c : {Case{1, 1, 1, 4, 4, -1, true}, Case{2, 7, 3, 5, 6, -1, true}, Case{1, 65, 2, 8, 3, -1, true},
                 Case{1, 70, 1, 4, 4, 5, true}, Case{2, 33, 2, 3, 3, 0, true}, Case{1, 40, 2, 4, 5, -1, false}}) {
    CAPTURE(c.T);
    CAPTURE(c.window);
    Tensor q = randn64({c.B, c.T, c.H, c.d}, gen, 1.0, false), k = randn64({c.B, c.T, c.H, c.d}, gen, 1.0, false),
           v = randn64({c.B, c.T, c.H, c.e}, gen, 1.0, false);
    auto want = reference(q, k, v, c.causal, c.window);
    for (AttentionImpl impl : {AttentionImpl::naive, AttentionImpl::tiled})
      CHECK(rel_error(attention(q, k, v, opts(impl, c.causal, c.window)).to_f64_vector(), want) < 1e-13);
  }
}

TEST_CASE("attention: tiled equals naive in f64, forward and every gradient, across tile edges and windows") {
  Generator gen(2);
  for (int64_t T : {1, 7, 64, 65, 130, 200})
    for (int64_t window : {int64_t{-1}, int64_t{0}, int64_t{5}, int64_t{63}, int64_t{64}, int64_t{100}, T - 1})
      for (bool causal : {true, false}) {
        if (!causal && window >= 0) continue;
        const int64_t B = T > 100 ? 1 : 2, H = T > 100 ? 1 : 3, d = 8, e = 5;
        CAPTURE(T);
        CAPTURE(window);
        CAPTURE(causal);
        std::vector<Tensor> a = {randn64({B, T, H, d}, gen), randn64({B, T, H, d}, gen), randn64({B, T, H, e}, gen)};
        std::vector<Tensor> b;
        for (const Tensor& t : a) b.push_back(t.detach().clone().requires_grad_());
        Tensor seed = Tensor::randn({B, T, H, e}, gen, 1.0, DType::f64);
        Tensor on = attention(a[0], a[1], a[2], opts(AttentionImpl::naive, causal, window));
        Tensor ot = attention(b[0], b[1], b[2], opts(AttentionImpl::tiled, causal, window));
        CHECK(rel_error(ot, on) < 1e-12);
        on.backward(seed);
        ot.backward(seed);
        for (int i = 0; i < 3; ++i) CHECK(rel_error(b[i].grad(), a[i].grad()) < 1e-12);
      }
}

TEST_CASE("attention: gradients against finite differences, both kernels") {
  Generator gen(3);
  for (AttentionImpl impl : {AttentionImpl::naive, AttentionImpl::tiled})
    for (int64_t window : {int64_t{-1}, int64_t{2}}) {
      CAPTURE(window);
      auto fn = [&](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2], opts(impl, true, window)); };
      CHECK(gradcheck("attention", fn, {randn64({2, 6, 2, 3}, gen), randn64({2, 6, 2, 3}, gen), randn64({2, 6, 2, 4}, gen)}) <= 1.0);
      CHECK(gradcheck("attention", fn, {randn64({1, 1, 1, 2}, gen), randn64({1, 1, 1, 2}, gen), randn64({1, 1, 1, 3}, gen)}) <= 1.0);
    }
  // A multi-tile case for the tiled kernel: T crosses a tile boundary.
  auto fn = [](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2], opts(AttentionImpl::tiled, true, 70)); };
  CHECK(gradcheck("attention tiled", fn, {randn64({1, 67, 1, 2}, gen), randn64({1, 67, 1, 2}, gen), randn64({1, 67, 1, 1}, gen)}) <= 1.0);
}

TEST_CASE("attention: f32 against f64 and bit-identical reruns") {
  Generator gen(4);
  std::vector<Tensor> in = {randn64({2, 150, 2, 16}, gen), randn64({2, 150, 2, 16}, gen), randn64({2, 150, 2, 16}, gen)};
  auto tiled = [](const std::vector<Tensor>& x) { return attention(x[0], x[1], x[2], opts(AttentionImpl::tiled, true, -1)); };
  // f32 accumulation over up to 150 keys: relative error of outputs and gradients below 1e-5.
  CHECK(f32_vs_f64(tiled, in) < 1e-5);
  Tensor q = in[0].detach().to(DType::f32), k = in[1].detach().to(DType::f32), v = in[2].detach().to(DType::f32);
  CHECK(attention(q, k, v).to_f64_vector() == attention(q, k, v).to_f64_vector());
}

TEST_CASE("attention: bad inputs are refused with the shapes named") {
  Generator gen(5);
  Tensor q = Tensor::randn({1, 8, 2, 4}, gen), k = Tensor::randn({1, 9, 2, 4}, gen), v = Tensor::randn({1, 8, 2, 4}, gen);
  CHECK_THROWS_WITH_AS(attention(q, k, v), doctest::Contains("q [1, 8, 2, 4] and k [1, 9, 2, 4] must have the same shape"), Error);
  CHECK_THROWS_WITH_AS(attention(q, q, v, opts(AttentionImpl::tiled, false, 3)), doctest::Contains("needs causal = true"), Error);
  CHECK_THROWS_WITH_AS(attention(q, q, v, opts(AttentionImpl::tiled, true, -2)), doctest::Contains("window_left must be"), Error);
  CHECK_THROWS_WITH_AS(attention(reshape(q, {8, 8}), q, v), doctest::Contains("attention"), Error);
}

TEST_CASE("attention: FLOP counting") {
  CHECK(cpu::attention_pairs(4, true, -1) == 10);
  CHECK(cpu::attention_pairs(4, true, 1) == 7);
  CHECK(cpu::attention_pairs(4, false, -1) == 16);
  CHECK(cpu::attention_flops(2, 4, 3, 8, 8, true, -1, false) == 2 * 3 * 10 * 32.0);
}
