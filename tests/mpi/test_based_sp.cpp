// The BASED family under sequence parallelism (2 and 4 ranks, f64): a model with all three mixers
// (BaseConv's conv halo, Taylor's [S | z] state gather, the sliding window's K/V halo) gives on
// every rank the logits of its share and, summed over the ranks, the parameter gradients of the
// whole sequence in one process; and the Taylor layer sends the same bytes at T and 2T.
#include <doctest/doctest.h>

#include "framework/comm/comm_stats.h"
#include "framework/model.h"
#include "framework/ops.h"
#include "models/tiny_model.h"
#include "model_share.h"

using namespace eat;
using namespace eat::test;

namespace {

// d_model 8, 2 heads (e = 4), feature_dim 3: conv at 0, Taylor at 1, window at 2.
ModelConfig three_mixers(int64_t window, bool denominator = true) {
  ModelConfig c = tiny_model_config("based", DType::f64);
  c.n_layers = 3;
  c.options.set("taylor_layers", IntList{1});
  c.options.set("window_layers", IntList{2});
  c.options.set("window", window);
  c.options.set("taylor_denominator", denominator);
  return c;
}

}  // namespace

TEST_CASE("based: sequence-parallel training equals the whole sequence, logits and every gradient (f64)") {
  // L = 3 tokens per rank: chunks of 2 cross the share boundary; windows of 2 (inside the previous
  // share) and 7 (several ranks back); the Taylor layer with its denominator and without.
  for (const auto& [window, denominator] : {std::pair<int64_t, bool>{2, true}, {7, false}}) {
    CAPTURE(window);
    CAPTURE(denominator);
    check_split_model_equals_whole(three_mixers(window, denominator), 2, 3, 11);
  }
}

TEST_CASE("based: the Taylor layer sends one [B, H, D', e + 1] state per rank whatever T is") {
  Communicator& w = world();
  const int64_t S = w.size(), B = 2, H = 2, e = 4, rows = 1 + 3 + 3 * 4 / 2;  // feature_dim 3: D' = 10
  for (int64_t L : {4, 8}) {
    CAPTURE(L);
    Generator gen(14);
    auto model = build_model(three_mixers(2), gen);
    model->set_sequence_parallel(&w);
    Tensor ids = random_ids(B, L, 11, 15);
    reset_comm_counts();
    sum(model->forward(ids).logits).backward();
    auto counts = comm_counts();
    // Forward: this rank's state into the gather; backward: the S states' gradients into the
    // reduce-scatter.
    CHECK(counts["layers.1.taylor"].bytes == (1 + S) * B * H * rows * (e + 1) * 8);
    // The halos: k - 1 = 2 rows of the 2 D conv input and window = 2 keys and values, forward to the
    // next rank and their gradients back (the ends of the line send one way only).
    const int64_t sends = (w.rank() + 1 < S) + (w.rank() > 0);
    CHECK(counts["layers.0.conv"].bytes == sends * B * 2 * 16 * 8);
    CHECK(counts["layers.2.window"].bytes == sends * B * 2 * H * (4 + 4) * 8);
  }
}
