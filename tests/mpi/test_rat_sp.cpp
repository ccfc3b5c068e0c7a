// The RAT family under sequence parallelism (2 and 4 ranks, f64): with every rank holding whole
// chunks, a model with a RAT layer and a sliding-window layer gives on every rank the logits of its
// share and, summed over the ranks, the parameter gradients of the whole sequence in one process;
// the RAT layer's traffic is 2 D numbers per chunk (it grows as T / L); a share that is not whole
// chunks is refused with both numbers.
#include <doctest/doctest.h>

#include "base/error.h"
#include "framework/comm/comm_stats.h"
#include "framework/model.h"
#include "framework/ops.h"
#include "models/tiny_model.h"
#include "sequence_share.h"

using namespace eat;
using namespace eat::test;

namespace {

// d_model 8, 2 heads of 4 sharing one q/k group: RAT (chunks of `chunk`) at 0, a window at 1.
ModelConfig rat_and_window(int64_t chunk, int64_t window) {
  ModelConfig c = tiny_model_config("rat", DType::f64);
  c.options.set("chunk", chunk);
  c.options.set("window", window);
  return c;
}

// Random ids [B, T], the same on every rank.
Tensor random_ids(int64_t B, int64_t T, uint64_t seed) {
  Generator gen(seed);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < B * T; ++i) ids.push_back(static_cast<int32_t>(gen.next_u64() % 11));
  return Tensor::from_vector<int32_t>(ids, {B, T});
}

}  // namespace

TEST_CASE("rat: sequence-parallel training equals the whole sequence, logits and every gradient (f64)") {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  // 6 tokens per rank: chunks of 2 and 3 (several per rank), of 6 (one per rank); windows inside
  // the previous share and several ranks back.
  for (const auto& [chunk, window] : {std::pair<int64_t, int64_t>{2, 2}, {3, 7}, {6, 4}}) {
    CAPTURE(chunk);
    CAPTURE(window);
    const int64_t B = 2, L = 6, T = S * L;
    Tensor ids = random_ids(B, T, 21);
    Generator seed_gen(22);
    Tensor seed = Tensor::randn({B, T, 11}, seed_gen, 1.0, DType::f64);

    Generator g1(23);
    auto whole = build_model(rat_and_window(chunk, window), g1);
    Tensor full = whole->forward(ids).logits;
    sum(mul(full, seed)).backward();

    Generator g2(23);
    auto split = build_model(rat_and_window(chunk, window), g2);
    split->set_sequence_parallel(&w);
    Tensor mine = split->forward(time_slice(ids, r * L, L)).logits;
    CHECK(rel_error(mine, time_slice(full, r * L, L)) < 1e-12);
    sum(mul(mine, time_slice(seed, r * L, L))).backward();
    const auto whole_params = whole->parameters(), split_params = split->parameters();
    REQUIRE(whole_params.size() == split_params.size());
    for (size_t i = 0; i < whole_params.size(); ++i) {
      CAPTURE(whole_params[i].name);
      Tensor g = split_params[i].tensor.grad().clone();
      w.all_reduce_sum(g);  // a replicated parameter's gradient: the sum over the ranks' shares
      CHECK(rel_error(g, whole_params[i].tensor.grad()) < 1e-12);
    }
  }
}

TEST_CASE("rat: the RAT layer sends 2 D numbers per chunk, so its bytes grow as T / L") {
  Communicator& w = world();
  const int64_t S = w.size(), B = 2, D = 8, chunk = 2;
  for (int64_t L : {4, 8}) {
    CAPTURE(L);
    Generator gen(24);
    auto model = build_model(rat_and_window(chunk, 2), gen);
    model->set_sequence_parallel(&w);
    Tensor ids = random_ids(B, L, 25);
    reset_comm_counts();
    sum(model->forward(ids).logits).backward();
    auto counts = comm_counts();
    // Forward: this rank's L / chunk key and value summaries into the gathers; backward: the
    // gradients of all S ranks' summaries into the reduce-scatters.
    CHECK(counts["layers.0.rat"].bytes == (1 + S) * 2 * B * (L / chunk) * D * 8);
  }
}

TEST_CASE("rat: a share that is not whole chunks is refused, naming both numbers") {
  Communicator& w = world();
  Generator gen(26);
  auto model = build_model(rat_and_window(4, 2), gen);
  model->set_sequence_parallel(&w);
  CHECK_THROWS_WITH_AS(model->forward(random_ids(1, 6, 27)),
                       "rat: under sequence parallelism each rank holds whole chunks, but its 6 tokens (data.seq_len / "
                       "parallel.sp) are not a multiple of model.rat.chunk = 4",
                       Error);
}
