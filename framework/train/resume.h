#pragma once
// Resume: where a run starts. TrainOptions::resume "never" starts at step 0, "auto" continues from
// the run directory's newest checkpoint (step 0 when there is none), a path from that checkpoint;
// weights, optimizer state, step and data position come back exactly. The leader's metrics log
// then drops lines past the resumed step, so the file matches the resumed run.
#include "framework/train/training_run.h"

namespace eat {

void resume_run(TrainingRun& run);

}  // namespace eat
