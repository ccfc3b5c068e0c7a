// The sequence-parallel Taylor linear attention under mpirun (2 or 4 ranks): each rank's output and
// input gradients equal the whole sequence's rows in one process, with the denominator and
// without; and the gather overlapped with the local pass gives bit for bit what waiting first gives.
#include <doctest/doctest.h>

#include <vector>

#include "framework/parallel/taylor_sp.h"
#include "sequence_share.h"

using namespace eat;
using namespace eat::test;

namespace {

// q, k [B, T, H, f] (smaller, so the quadratic scores stay moderate), v [B, T, H, e] and a seed
// for the output's gradient, the same on every rank.
std::vector<Tensor> whole_inputs(int64_t T, DType dtype, uint64_t seed) {
  const int64_t B = 2, H = 2, f = 3, e = 4;
  Generator gen(seed);
  return {Tensor::randn({B, T, H, f}, gen, 0.7, dtype), Tensor::randn({B, T, H, f}, gen, 0.7, dtype),
          Tensor::randn({B, T, H, e}, gen, 1.0, dtype), Tensor::randn({B, T, H, e}, gen, 1.0, dtype)};
}

void check_against_full(int64_t L, const TaylorOptions& opt, double tol) {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  const std::vector<Tensor> in = whole_inputs(L * S, DType::f64, 7);
  std::vector<Tensor> full = {in[0].clone().requires_grad_(), in[1].clone().requires_grad_(),
                              in[2].clone().requires_grad_()};
  Tensor y_full = taylor_attention(full[0], full[1], full[2], Tensor(), opt).first;
  y_full.backward(in[3]);
  std::vector<Tensor> mine;
  for (int i = 0; i < 3; ++i) mine.push_back(time_slice(in[i], r * L, L).requires_grad_());
  Tensor y = taylor_attention_sp(mine[0], mine[1], mine[2], w, opt);
  CHECK(rel_error(y, time_slice(y_full, r * L, L)) < tol);
  y.backward(time_slice(in[3], r * L, L));
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(rel_error(mine[i].grad(), time_slice(full[i].grad(), r * L, L)) < tol);
  }
}

}  // namespace

TEST_CASE("taylor sp: every rank's output and input gradients equal the whole sequence's rows (f64)") {
  // Blocks of 4: several per rank, a partial one when L is odd, one token per rank at L = 1.
  for (int64_t L : {1, 7, 16})
    for (bool normalize : {true, false}) {
      CAPTURE(L);
      CAPTURE(normalize);
      check_against_full(L, {.block = 4, .normalize = normalize}, 1e-12);  // summation order only (1e-15 seen)
    }
}

TEST_CASE("taylor sp: the overlapped gather gives bit for bit the blocking path's output and gradients") {
  Communicator& w = world();
  for (DType dtype : {DType::f32, DType::f64})
    for (bool normalize : {true, false}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(normalize);
      const std::vector<Tensor> in = whole_inputs(37, dtype, 21 + static_cast<uint64_t>(w.rank()));  // own inputs
      std::vector<std::vector<double>> results[2];
      for (bool overlap : {false, true}) {
        std::vector<Tensor> x = {in[0].clone().requires_grad_(), in[1].clone().requires_grad_(),
                                 in[2].clone().requires_grad_()};
        Tensor y = taylor_attention_sp(x[0], x[1], x[2], w, {.block = 8, .normalize = normalize}, overlap);
        y.backward(in[3]);
        results[overlap] = {y.to_f64_vector(), x[0].grad().to_f64_vector(), x[1].grad().to_f64_vector(),
                            x[2].grad().to_f64_vector()};
      }
      for (size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(results[0][i] == results[1][i]);
      }
    }
}
