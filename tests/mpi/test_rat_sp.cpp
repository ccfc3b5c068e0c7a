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
#include "model_share.h"
#include "models/tiny_model.h"

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

}  // namespace

TEST_CASE("rat: sequence-parallel training equals the whole sequence, logits and every gradient (f64)") {
  // 6 tokens per rank: chunks of 2 and 3 (several per rank), of 6 (one per rank); windows inside
  // the previous share and several ranks back.
  for (const auto& [chunk, window] : {std::pair<int64_t, int64_t>{2, 2}, {3, 7}, {6, 4}}) {
    CAPTURE(chunk);
    CAPTURE(window);
    check_split_model_equals_whole(rat_and_window(chunk, window), 2, 6, 21);
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
    Tensor ids = random_ids(B, L, 11, 25);
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
  CHECK_THROWS_WITH_AS(model->forward(random_ids(1, 6, 11, 27)),
                       "rat: under sequence parallelism each rank holds whole chunks, but its 6 tokens (data.seq_len / "
                       "parallel.sp) are not a multiple of model.rat.chunk = 4",
                       Error);
}
