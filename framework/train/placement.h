#pragma once
// Where a recipe's model runs and in which types: train.device, train.precision and train.tf32
// turned into a built model on that device. `eat train` and `eat eval` share it.
#include <memory>

#include "framework/config/recipe.h"
#include "framework/model.h"

namespace eat {

// The model config of a recipe with its types: f64 or f32 parameters, and on cuda with
// precision = "bf16" f32 masters computed in bf16.
ModelConfig placed_model_config(const Recipe& recipe);

// Builds the recipe's model from run.seed on the host (so every device starts from the same
// weights), moves it to train.device and sets the device's TF32 switch from train.tf32. Checks
// first that the device is there (an error naming train.device).
std::unique_ptr<LanguageModel> build_placed_model(const Recipe& recipe);

}  // namespace eat
