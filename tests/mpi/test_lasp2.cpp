// LASP-2 under mpirun: the sequence-parallel Lightning op's output and every input gradient equal
// the single-process op on the whole sequence, for the whole SP group (2 or 4 ranks).
#include <doctest/doctest.h>

#include <cmath>
#include <tuple>

#include "framework/parallel/lasp2.h"
#include "base/random.h"
#include "gradcheck.h"
#include "sequence_share.h"

using namespace eat;
using namespace eat::test;

namespace {

void check_against_full(DType dtype, std::vector<double> decay, int64_t L, double tol) {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  const int64_t B = 2, T = L * S, H = static_cast<int64_t>(decay.size()), d = 5, e = 3;
  Generator gen(42);  // the same full inputs on every rank
  Tensor q = Tensor::randn({B, T, H, d}, gen, 1.0, dtype), k = Tensor::randn({B, T, H, d}, gen, 1.0, dtype),
         v = Tensor::randn({B, T, H, e}, gen, 1.0, dtype), seed = Tensor::randn({B, T, H, e}, gen, 1.0, dtype);
  // Reference: the whole sequence in one process.
  std::vector<Tensor> full = {q.clone().requires_grad_(), k.clone().requires_grad_(), v.clone().requires_grad_()};
  LightningOptions opt;
  opt.block = 4;  // several blocks per rank, and a partial one when L is odd
  Tensor o_full = lightning_attention(full[0], full[1], full[2], decay, Tensor(), opt).first;
  o_full.backward(seed);
  // This rank's share.
  std::vector<Tensor> mine = {time_slice(q, r * L, L).requires_grad_(), time_slice(k, r * L, L).requires_grad_(),
                              time_slice(v, r * L, L).requires_grad_()};
  Tensor o = lightning_attention_sp(mine[0], mine[1], mine[2], decay, w, opt);
  CHECK(rel_error(o, time_slice(o_full, r * L, L)) < tol);
  o.backward(time_slice(seed, r * L, L));
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(rel_error(mine[i].grad(), time_slice(full[i].grad(), r * L, L)) < tol);
  }
}

}  // namespace

TEST_CASE("lasp2: sequence-parallel lightning attention equals the whole sequence (f64)") {
  for (int64_t L : {1, 7, 16}) {
    CAPTURE(L);
    check_against_full(DType::f64, {0.9, 0.5}, L, 1e-12);
    check_against_full(DType::f64, {1.0}, L, 1e-12);  // no decay: plain causal linear attention
    check_against_full(DType::f64, {0.05, 0.99, 1.0}, L, 1e-12);
  }
}

TEST_CASE("lasp2: f32 against the whole sequence") {
  check_against_full(DType::f32, {0.9, 0.7}, 33, 1e-6);
  check_against_full(DType::f32, {1.0}, 20, 1e-6);
}

TEST_CASE("lasp2: the gathered states do not grow with the sequence") {
  // What one rank sends per layer is its final state, B H d e numbers, at any length.
  Communicator& w = world();
  for (int64_t L : {8, 64}) {
    Generator gen(1);
    Tensor q = Tensor::randn({1, L, 2, 4}, gen), k = Tensor::randn({1, L, 2, 4}, gen), v = Tensor::randn({1, L, 2, 3}, gen);
    auto [o, state] = lightning_attention(q, k, v, {0.9, 0.8});
    CHECK(w.all_gather(state).numel() == static_cast<int64_t>(w.size()) * 1 * 2 * 4 * 3);
  }
}

TEST_CASE("lasp2h: sequence-parallel softmax attention equals the whole sequence") {
  for (auto [dtype, L, tol] : {std::tuple<DType, int64_t, double>{DType::f64, 7, 1e-12}, {DType::f64, 70, 1e-12},
                               {DType::f32, 33, 1e-6}}) {
    CAPTURE(L);
    check_attention_sp(dtype, L, -1, tol);
  }
}

TEST_CASE("lasp2: the overlapped gather gives bit for bit the blocking path's output and gradients") {
  Communicator& w = world();
  for (DType dtype : {DType::f32, DType::f64}) {
    Generator gen(21);
    const int64_t B = 2, L = 37, H = 2, d = 6, e = 5;  // each rank's own inputs: no reference needed here
    for (int i = 0; i < w.rank(); ++i) Tensor::randn({1}, gen);
    Tensor q = Tensor::randn({B, L, H, d}, gen, 1.0, dtype), k = Tensor::randn({B, L, H, d}, gen, 1.0, dtype),
           v = Tensor::randn({B, L, H, e}, gen, 1.0, dtype), seed = Tensor::randn({B, L, H, e}, gen, 1.0, dtype);
    std::vector<std::vector<double>> results[2];
    for (bool overlap : {false, true}) {
      std::vector<Tensor> in = {q.clone().requires_grad_(), k.clone().requires_grad_(), v.clone().requires_grad_()};
      LightningOptions opt;
      opt.block = 8;
      Tensor o = lightning_attention_sp(in[0], in[1], in[2], {0.9, 0.6}, w, opt, overlap);
      o.backward(seed);
      results[overlap] = {o.to_f64_vector(), in[0].grad().to_f64_vector(), in[1].grad().to_f64_vector(),
                          in[2].grad().to_f64_vector()};
    }
    for (size_t i = 0; i < 4; ++i) {
      CAPTURE(i);
      CHECK(results[0][i] == results[1][i]);
    }
  }
}
