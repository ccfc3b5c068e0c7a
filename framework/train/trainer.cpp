#include "framework/train/trainer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "framework/profiler.h"
#include "framework/train/resume.h"
#include "framework/train/run_checkpoint.h"
#include "framework/train/step.h"
#include "framework/train/step_log.h"
#include "framework/train/stop_vote.h"
#include "framework/train/training_run.h"
#include "framework/train/validation.h"

namespace eat {

namespace {

// --profile: times every op of the steps after the first (allocations, first touch of every
// buffer), leaving validation and checkpoints out, and prints the table at the end.
class StepProfile {
 public:
  StepProfile(bool on, int64_t start_step) : on_(on), start_step_(start_step) {}
  void begin(int64_t step) {
    profiling_ = on_ && step > start_step_;
    if (!profiling_) return;
    if (steps_ == 0) profiler::reset();
    profiler::enable(true);
  }
  void end(double step_seconds) {
    if (!profiling_) return;
    profiler::enable(false);
    seconds_ += step_seconds;
    steps_ += 1;
  }
  void print() const {
    if (on_) profiler::print(stdout, seconds_, steps_);
  }

 private:
  bool on_, profiling_ = false;
  int64_t start_step_;
  double seconds_ = 0;
  int64_t steps_ = 0;
};

bool every(int64_t step, int64_t period) { return period > 0 && step % period == 0; }

}  // namespace

std::string run_directory(const Recipe& recipe) {
  return (std::filesystem::path(recipe.run.out_dir) / recipe.run.name).string();
}

TrainResult train(const Recipe& recipe, const TrainOptions& options) {
  TrainingRun run(recipe, options);
  return train(run);
}

TrainResult train(TrainingRun& run) {
  const Recipe& recipe = run.recipe;
  resume_run(run);
  print_run_header(run);
  StopSignals signals;
  // A stop requested during set-up: nothing trained, nothing to save (any checkpoint stays).
  if (run.state.step < recipe.train.steps && stop_voted(run.world)) {
    run.result.interrupted = true;
    run.result.final_step = run.state.step;
    if (run.say)
      std::printf("stopped by signal before the first step; nothing was trained (the run stays at step %lld)\n",
                  static_cast<long long>(run.state.step));
    return run.result;
  }
  StepProfile profile(run.options.profile, run.result.start_step);
  run.start_time = std::chrono::steady_clock::now();
  bool saved_at_end = false;
  while (run.state.step < recipe.train.steps) {
    profile.begin(run.state.step);
    const StepNumbers step = train_step(run);
    profile.end(step.seconds);
    log_step(run, step);
    const bool last = step.step == recipe.train.steps;
    if (last && run.say) profile.print();
    if (last || every(step.step, recipe.eval.every)) run.result.last_val_loss = validate(run);
    if (last || every(step.step, recipe.checkpoint.every)) {
      checkpoint_run(run);
      saved_at_end = last;
    }
    if (stop_voted(run.world)) {
      if (!last) checkpoint_run(run);
      run.result.interrupted = true;
      if (run.say)
        std::printf("stopped by signal at step %lld; checkpoint %s\n", static_cast<long long>(step.step),
                    run.result.last_checkpoint.c_str());
      break;
    }
  }
  // Resumed at the end already: nothing to train, still leave the curve.
  if (!saved_at_end && !run.result.interrupted && run.state.step == recipe.train.steps &&
      run.result.start_step == run.state.step)
    write_run_loss_curve(run);
  print_run_footer(run);
  run.result.final_step = run.state.step;
  return run.result;
}

}  // namespace eat
