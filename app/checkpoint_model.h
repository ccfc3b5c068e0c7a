#pragma once
// A checkpoint's model loaded for inference (eval, generate): its recipe, the model on the run's
// device or on another one asked for, and the trainer's state at that checkpoint.
#include <memory>
#include <string>

#include "framework/config/recipe.h"
#include "framework/model.h"
#include "framework/train/checkpoint.h"

namespace eat::cli {

struct CheckpointModel {
  std::string dir;  // the checkpoint directory (a run directory resolved to its newest)
  Recipe recipe;    // with train.device and precision as the model runs now
  std::unique_ptr<LanguageModel> model;
  TrainState state;
  std::unique_ptr<data::Tokenizer> tokenizer;  // the one its training data were written with
};

// checkpoint: a checkpoint or run directory. device: "" for the run's train.device, or "cpu" /
// "cuda": bf16 runs store f32 masters and run in f32 there; f64 weights are refused on cuda.
// command names the caller in messages ("eval").
CheckpointModel load_checkpoint_model(const std::string& checkpoint, const std::string& device, const std::string& command);

}  // namespace eat::cli
