// Aux loss terms over data-parallel ranks: every rank's aux term is its share of the global
// batch's mean, so a step on 2 or 4 ranks reports the loss, the aux term and the gradient norm of
// one process taking the same global batch.
#include <doctest/doctest.h>

#include <cmath>

#include "framework/train/step.h"
#include "training/squared_logits_model.h"

using namespace eat;

TEST_CASE("aux loss: a step on every rank reports the numbers of one process with the same global batch") {
  test::SquaredLogitsRuns runs;
  const std::vector<std::string> sets = {"train.micro_batch=1"};  // 4 sequences: 4, 2 or 1 micro-batches a rank
  TrainOptions on_world = test::quiet();
  on_world.world = &world();
  auto ranks = runs.run(0.75, sets, on_world);
  auto alone = runs.run(0.75, sets);
  REQUIRE(ranks->layout.dp == world().size());
  for (int step = 0; step < 2; ++step) {
    CAPTURE(step);
    const StepNumbers shared = train_step(*ranks);
    const StepNumbers single = train_step(*alone);
    // The same sums in another order: equal to rounding.
    CHECK(std::abs(shared.loss - single.loss) <= 1e-12 * single.loss);
    REQUIRE(shared.aux.size() == 1);
    CHECK(std::abs(shared.aux[0].value - single.aux[0].value) <= 1e-12 * single.aux[0].value);
    CHECK(std::abs(shared.aux_loss - single.aux_loss) <= 1e-12 * single.aux_loss);
    CHECK(std::abs(shared.grad_norm - single.grad_norm) <= 1e-10 * single.grad_norm);
  }
}
