#pragma once
// A model trained on sequences split over the world's ranks against the same model on whole
// sequences (both built from one seed): the check every sequence-parallel family makes.
#include <doctest/doctest.h>

#include "framework/model.h"
#include "framework/ops.h"
#include "sequence_share.h"

namespace eat::test {

// Random ids [B, T] below `vocab`, the same on every rank.
inline Tensor random_ids(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < B * T; ++i)
    ids.push_back(static_cast<int32_t>(gen.next_u64() % static_cast<uint64_t>(vocab)));
  return Tensor::from_vector<int32_t>(ids, {B, T});
}

// B sequences of L tokens per rank: every rank's logits are the rows of its share of the whole
// forward, and the parameter gradients summed over the ranks (a replicated parameter's gradient)
// are the whole sequence's, both to relative error 1e-12 (f64 configs). chain_slices: as
// parallel.chain_slices.
inline void check_split_model_equals_whole(const ModelConfig& c, int64_t B, int64_t L, uint64_t seed,
                                           int64_t chain_slices = 0) {
  Communicator& w = world();
  const int64_t r = w.rank(), T = w.size() * L;
  Tensor ids = random_ids(B, T, c.vocab_size, seed);
  Generator seed_gen(seed + 1);
  Tensor weights = Tensor::randn({B, T, c.vocab_size}, seed_gen, 1.0, DType::f64);

  Generator g1(seed + 2);
  auto whole = build_model(c, g1);
  Tensor full = whole->forward(ids).logits;
  sum(mul(full, weights)).backward();

  Generator g2(seed + 2);
  auto split = build_model(c, g2);
  split->set_sequence_parallel(&w, chain_slices);
  Tensor mine = split->forward(time_slice(ids, r * L, L)).logits;
  CHECK(rel_error(mine, time_slice(full, r * L, L)) < 1e-12);
  sum(mul(mine, time_slice(weights, r * L, L))).backward();
  const auto whole_params = whole->parameters(), split_params = split->parameters();
  REQUIRE(whole_params.size() == split_params.size());
  for (size_t i = 0; i < whole_params.size(); ++i) {
    CAPTURE(whole_params[i].name);
    Tensor g = split_params[i].tensor.grad().clone();
    w.all_reduce_sum(g);
    CHECK(rel_error(g, whole_params[i].tensor.grad()) < 1e-12);
  }
}

}  // namespace eat::test
