// The public sequence-parallel primitives under mpirun (2 and 4 ranks, f64), each against the
// same computation done whole in one process: every rank builds every rank's inputs from one
// seed, runs the primitive on its own, and compares its output and its inputs' gradients with the
// matching part of the whole computation. The loss is the sum over ranks of <seed_r, output_r>,
// so a rank's input gradient collects what every rank's output made of it.
#include <doctest/doctest.h>

#include <vector>

#include "base/random.h"
#include "framework/parallel/collective_ops.h"
#include "framework/parallel/state_gather.h"
#include "framework/parallel/time_join.h"
#include "gradcheck.h"
#include "sequence_share.h"

using namespace eat;
using namespace eat::test;

namespace {

// One tensor of `shape` per rank, the same on every rank.
std::vector<Tensor> per_rank(const Shape& shape, Generator& gen, int S, double stddev = 1.0) {
  std::vector<Tensor> out;
  for (int s = 0; s < S; ++s) out.push_back(Tensor::randn(shape, gen, stddev, DType::f64).requires_grad_());
  return out;
}

// sum_s <seeds[s], outs[s]>, the whole computation's loss.
Tensor total(const std::vector<Tensor>& outs, const std::vector<Tensor>& seeds) {
  Tensor t = sum(mul(outs[0], seeds[0]));
  for (size_t s = 1; s < outs.size(); ++s) t = add(t, sum(mul(outs[s], seeds[s])));
  return t;
}

// A leaf's gradient, zeros where no output reached it (the last rank's state, in a prefix).
Tensor grad_of(const Tensor& leaf) { return leaf.grad().defined() ? leaf.grad() : Tensor::zeros_like(leaf); }

// This rank's copy of its input, as a fresh leaf.
Tensor own(const Tensor& x) { return x.detach().clone().requires_grad_(); }

}  // namespace

TEST_CASE("state gather: a plain prefix sum of the earlier ranks' states ([S | z] style)") {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  Generator gen(21);
  std::vector<Tensor> states = per_rank({2, 3, 4}, gen, S), seeds = per_rank({2, 3, 4}, gen, S);
  // Whole: incoming(s) = sum_{j < s} state_j, rank 0's zero.
  std::vector<Tensor> incoming;
  for (int s = 0; s < S; ++s) {
    Tensor in = Tensor::zeros({2, 3, 4}, DType::f64);
    for (int j = 0; j < s; ++j) in = add(in, states[static_cast<size_t>(j)]);
    incoming.push_back(in);
  }
  total(incoming, seeds).backward();
  // Split: this rank's state only, twice: a fold reading every rank (weights of zero), and one
  // that reads nothing on rank 0 (the gather ties it in, or rank 0 would skip the backward's collective).
  for (bool reads_every_rank : {true, false}) {
    CAPTURE(reads_every_rank);
    Tensor mine = own(states[static_cast<size_t>(r)]);
    Tensor in = gather_states(mine, w, [&](const Tensor& gathered, int rank) {
      if (!reads_every_rank && rank == 0) return Tensor::zeros({2, 3, 4}, DType::f64);
      return rank_weighted_sum(gathered, prefix_weights(gathered, rank));
    }, reads_every_rank);
    CHECK(rel_error(in, incoming[static_cast<size_t>(r)]) < 1e-14);
    in.backward(seeds[static_cast<size_t>(r)]);
    CHECK(rel_error(grad_of(mine), grad_of(states[static_cast<size_t>(r)])) < 1e-14);
  }
}

TEST_CASE("state gather: a decayed sum with overlap, the fold Lightning uses") {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  Generator gen(22);
  std::vector<Tensor> states = per_rank({2, 5}, gen, S), seeds = per_rank({2, 5}, gen, S);
  const double lambda = 0.7;
  auto weights = [&](const Tensor& gathered, int rank) {  // lambda^(r - 1 - j) for j < r
    std::vector<double> v(static_cast<size_t>(gathered.numel()), 0.0);
    for (int j = 0; j < rank; ++j) std::fill_n(v.begin() + j * 10, 10, std::pow(lambda, rank - 1 - j));
    return Tensor::from_vector<double>(v, gathered.shape());
  };
  std::vector<Tensor> incoming;
  for (int s = 0; s < S; ++s) {
    Tensor in = Tensor::zeros({2, 5}, DType::f64);
    for (int j = 0; j < s; ++j) in = add(scale(in, lambda), states[static_cast<size_t>(j)]);
    incoming.push_back(in);
  }
  total(incoming, seeds).backward();
  Tensor mine = own(states[static_cast<size_t>(r)]);
  StateGather gather(mine, w);
  Tensor busy = scale(mine, 2.0);  // what a rank computes while the gather is in flight
  Tensor in = gather.fold([&](const Tensor& g, int rank) { return rank_weighted_sum(g, weights(g, rank)); }, true);
  CHECK(rel_error(in, incoming[static_cast<size_t>(r)]) < 1e-14);
  in.backward(seeds[static_cast<size_t>(r)]);
  CHECK(rel_error(grad_of(mine), grad_of(states[static_cast<size_t>(r)])) < 1e-14);
  CHECK(busy.defined());
}

TEST_CASE("state gather: the affine fold M_in(r) = A_{r-1} M_in(r-1) + b_{r-1} (Titans' linear memory)") {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  Generator gen(23);
  std::vector<Tensor> a = per_rank({2, 3, 3}, gen, S, 0.5), b = per_rank({2, 3, 2}, gen, S), seeds = per_rank({2, 3, 2}, gen, S);
  std::vector<Tensor> incoming;  // whole: the recurrence in rank order
  Tensor m = Tensor::zeros({2, 3, 2}, DType::f64);
  for (int s = 0; s < S; ++s) {
    incoming.push_back(m);
    m = add(matmul(a[static_cast<size_t>(s)], m), b[static_cast<size_t>(s)]);
  }
  total(incoming, seeds).backward();
  Tensor my_a = own(a[static_cast<size_t>(r)]), my_b = own(b[static_cast<size_t>(r)]);
  auto [all_a, all_b] = gather_state_pair(my_a, my_b, w);
  Tensor in = affine_prefix(all_a, all_b, r);
  CHECK(rel_error(in, incoming[static_cast<size_t>(r)]) < 1e-13);
  in.backward(seeds[static_cast<size_t>(r)]);
  // The last rank's A and b reach no later rank: zero gradients, on both sides.
  CHECK(rel_error(grad_of(my_a), grad_of(a[static_cast<size_t>(r)])) < 1e-13);
  CHECK(rel_error(grad_of(my_b), grad_of(b[static_cast<size_t>(r)])) < 1e-13);
}

TEST_CASE("gather_time: the whole sequence from every rank's share, gradients back to their owners") {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  for (int64_t L : {1, 5}) {
    CAPTURE(L);
    const int64_t B = 2, T = L * S;
    Generator gen(24);
    Tensor x = Tensor::randn({B, T, 3, 2}, gen, 1.0, DType::f64);
    std::vector<Tensor> seeds = per_rank({B, T, 3, 2}, gen, S);
    Tensor mine = time_slice(x, r * L, L).requires_grad_();
    Tensor whole = gather_time(mine, w);
    CHECK(whole.to_f64_vector() == x.to_f64_vector());  // moved, not computed
    whole.backward(seeds[static_cast<size_t>(r)]);
    Tensor want = Tensor::zeros({B, L, 3, 2}, DType::f64);
    for (int s = 0; s < S; ++s) want = add(want, time_slice(seeds[static_cast<size_t>(s)], r * L, L));
    CHECK(rel_error(mine.grad(), want) < 1e-14);
  }
}

TEST_CASE("ring_pass: rank r gets rank r - 1's state (rank 0 zeros), the adjoint runs backwards") {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  Generator gen(25);
  std::vector<Tensor> states = per_rank({2, 3}, gen, S), seeds = per_rank({2, 3}, gen, S);
  Tensor mine = own(states[static_cast<size_t>(r)]);
  Tensor got = ring_pass(w, mine);
  const Tensor want = r == 0 ? Tensor::zeros({2, 3}, DType::f64) : states[static_cast<size_t>(r - 1)];
  CHECK(got.to_f64_vector() == want.to_f64_vector());
  got.backward(seeds[static_cast<size_t>(r)]);
  const Tensor want_grad = r + 1 < S ? seeds[static_cast<size_t>(r + 1)] : Tensor::zeros({2, 3}, DType::f64);
  CHECK(mine.grad().to_f64_vector() == want_grad.to_f64_vector());
}

TEST_CASE("all_reduce_sum_op: every rank gets the group sum, each input the sum of every output gradient") {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  Generator gen(27);
  std::vector<Tensor> xs = per_rank({3, 2}, gen, S), seeds = per_rank({3, 2}, gen, S);
  Tensor whole_sum = xs[0];
  for (int s = 1; s < S; ++s) whole_sum = add(whole_sum, xs[static_cast<size_t>(s)]);
  std::vector<Tensor> outs(static_cast<size_t>(S), whole_sum);
  total(outs, seeds).backward();
  Tensor mine = own(xs[static_cast<size_t>(r)]);
  Tensor got = all_reduce_sum_op(w, mine);
  CHECK(rel_error(got, whole_sum) < 1e-14);
  got.backward(seeds[static_cast<size_t>(r)]);
  CHECK(rel_error(grad_of(mine), grad_of(xs[static_cast<size_t>(r)])) < 1e-14);
  CHECK(mine.to_f64_vector() == xs[static_cast<size_t>(r)].to_f64_vector());  // the input is not reduced in place
}
