// The MoH family under sequence parallelism (2 and 4 ranks, f64): LASP-2H over every head's keys
// and values gives every rank the logits of its share and, summed over the ranks, the whole
// sequence's parameter gradients; the load-balance term, its statistics all-reduced over the group,
// is the whole sequence's on every rank, and so is its gradient once each rank weighs it 1/S (as
// the trainer does).
#include <doctest/doctest.h>

#include "framework/model.h"
#include "framework/ops.h"
#include "model_share.h"
#include "models/tiny_model.h"

using namespace eat;
using namespace eat::test;

namespace {

// d_model 8, 4 heads of 2: one shared and the top 2 of 3 routed.
ModelConfig moh_config() {
  ModelConfig c = tiny_model_config("moh", DType::f64);
  c.n_heads = 4;
  c.options.set("shared_heads", int64_t{1});
  c.options.set("top_k", int64_t{2});
  return c;
}

}  // namespace

TEST_CASE("moh: sequence-parallel logits and gradients equal the whole sequence's (f64)") {
  check_split_model_equals_whole(moh_config(), 2, 3, 31);
}

TEST_CASE("moh: the load-balance term under sequence parallelism is the whole sequence's, value and gradient") {
  Communicator& w = world();
  const int64_t S = w.size(), r = w.rank(), B = 2, L = 3;
  Tensor ids = random_ids(B, S * L, 11, 32);

  Generator g1(33);
  auto whole = build_model(moh_config(), g1);
  const Tensor balance = whole->forward(ids).aux.at(0).value;
  balance.backward();

  Generator g2(33);
  auto split = build_model(moh_config(), g2);
  split->set_sequence_parallel(&w);
  const Tensor mine = split->forward(time_slice(ids, r * L, L)).aux.at(0).value;
  CHECK(rel_error(mine, balance) < 1e-12);
  scale(mine, 1.0 / static_cast<double>(S)).backward();
  const auto whole_params = whole->parameters(), split_params = split->parameters();
  for (size_t i = 0; i < whole_params.size(); ++i) {
    if (!whole_params[i].tensor.grad().defined()) continue;  // parameters the term does not reach
    CAPTURE(whole_params[i].name);
    Tensor g = split_params[i].tensor.grad().clone();
    w.all_reduce_sum(g);
    CHECK(rel_error(g, whole_params[i].tensor.grad()) < 1e-12);
  }
}
