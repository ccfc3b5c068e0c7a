#pragma once
// The state a training run's stages share. train() (trainer.cpp) is the loop over the stages,
// each in a file of its own:
//   run_setup.cpp    data, the model on its device, optimizer, schedule, batch layout, peak FLOP/s
//   resume.h         continue from a checkpoint (or start at step 0) and open the metrics log
//   step.h           one optimizer step: micro-batches -> loss -> backward -> all-reduce -> clip -> AdamW
//   step_log.h       the run's header, a step's metrics line and console line
//   validation.h     the held-out loss at a step
//   run_checkpoint.h a checkpoint of the run and its loss curve
//   stop_vote.h      SIGINT/SIGTERM and the ranks' vote to stop together
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "data/mask_file.h"
#include "data/token_file.h"
#include "framework/comm/communicator.h"
#include "framework/config/recipe.h"
#include "framework/model.h"
#include "framework/optim/adamw.h"
#include "framework/optim/schedule.h"
#include "framework/train/checkpoint.h"
#include "framework/train/evaluate.h"
#include "framework/train/metrics.h"
#include "framework/train/trainer.h"

namespace eat {

// How a step's global batch is cut over the ranks and into micro-batches.
struct BatchLayout {
  int64_t seq_len = 0;          // T, tokens of each sequence
  int64_t dp = 1, sp = 1;       // data- and sequence-parallel ranks
  int64_t dp_rank = 0;
  int64_t local_len = 0;        // T / sp: this rank's positions of each sequence ...
  int64_t local_t0 = 0;         // ... starting here
  int64_t local_batch = 0;      // sequences per data-parallel rank and step
  int64_t micro = 0;            // sequences per forward
  int64_t n_micro = 0;          // forwards per step (gradient accumulation)
  int64_t tokens_per_step = 0;  // over all ranks
  // The weight of one rank's micro-batch mean in the global batch's mean.
  int64_t shares() const { return n_micro * dp * sp; }
};

// The steps since the last console line: its tokens per second and communication share.
struct LogWindow {
  double seconds = 0, comm_seconds = 0;
  int64_t steps = 0;
};

struct TrainingRun {
  // Set-up (run_setup.cpp). `model` replaces the recipe's family (tests train models of their own);
  // it must already be on the recipe's device.
  TrainingRun(const Recipe& recipe, const TrainOptions& options, std::unique_ptr<LanguageModel> model = nullptr);
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  const Recipe recipe;
  const TrainOptions options;
  std::unique_ptr<Communicator> alone;  // the world when options.world is null
  Communicator& world;
  ParallelGroups groups;
  bool leader = false;  // rank 0: logs, metrics and checkpoints come from it only
  bool say = false;     // leader and not quiet: console lines
  TrainResult result;

  std::unique_ptr<data::TokenFile> train_file, val_file;  // val_file: null without data.val
  std::unique_ptr<data::MaskFile> train_mask, val_mask;  // the masks beside them, null where none
  std::unique_ptr<data::SampleStream> stream;
  // The subword tokenizer data.train was written with (its model goes into every checkpoint);
  // null for bytes and other ids that need no model.
  std::unique_ptr<data::Tokenizer> tokenizer;
  BatchLayout layout;

  ModelConfig model_config;
  Device device = Device::cpu;
  std::unique_ptr<LanguageModel> model;
  std::vector<Parameter> params;
  std::unique_ptr<AdamW> optimizer;  // built after the model moved, so its moments live on the model's device
  LrSchedule schedule;

  double flops_per_token = 0;  // model FLOPs per trained token: MFU's numerator
  double peak_gflops = 0;      // of all ranks together
  std::string peak_source;
  EvalOptions eval_options;

  // Resume (resume.h).
  TrainState state;
  std::string resume_dir;             // "" when the run starts at step 0
  std::unique_ptr<MetricsLog> metrics;  // the leader's
  // Appends a line to metrics.jsonl (the leader; the other ranks keep no record).
  void record(const nlohmann::json& line) {
    if (metrics) metrics->append(line);
  }

  // Step log (step_log.h).
  std::chrono::steady_clock::time_point start_time;
  LogWindow window;

 private:
  // Opens both token files and their masks and checks them whole, then the sample stream.
  void open_data();
};

}  // namespace eat
