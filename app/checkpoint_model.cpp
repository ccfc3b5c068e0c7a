#include "app/checkpoint_model.h"

#include "base/error.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/train/checkpoint.h"
#include "framework/train/placement.h"

namespace eat::cli {

CheckpointModel load_checkpoint_model(const std::string& checkpoint, const std::string& device, const std::string& command) {
  CheckpointModel c;
  c.dir = resolve_checkpoint(checkpoint);  // a run directory stands for its newest checkpoint
  c.recipe = checkpoint_recipe(c.dir);
  Recipe& recipe = c.recipe;
  if (!device.empty() && device != recipe.train.device) {
    // Another device than the run's. bf16 runs store f32 masters, evaluated in f32 on the CPU;
    // f64 weights have no CUDA kernels.
    EAT_CHECK(!(device == "cuda" && recipe.train.precision == "f64"), command, " --device cuda: ", c.dir,
              " holds f64 weights (train.precision = \"f64\"), which the CUDA kernels do not run; use --device cpu");
    recipe.train.device = device;
    recipe.train.device_where = "--device " + device;
    if (recipe.train.precision == "bf16") recipe.train.precision = "f32";
    recipe.train.tf32 = false;
  }
  c.model = build_placed_model(recipe);
  c.state = load_checkpoint_files(c.dir, *c.model, nullptr);
  c.tokenizer = checkpoint_tokenizer(c.dir, c.state);
  // Weights with an inf or a nan give no loss and no text worth reading: refused, named.
  for (const Parameter& p : c.model->parameters())
    EAT_CHECK(finite_values(p.tensor), command, ": ", c.dir, ": weight '", p.name,
              "' holds inf or nan values; this checkpoint cannot be evaluated");
  return c;
}

}  // namespace eat::cli
