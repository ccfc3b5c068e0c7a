#include "framework/train/placement.h"

#ifdef EAT_WITH_CUDA
#include "kernels/matmul.h"
#endif

namespace eat {

ModelConfig placed_model_config(const Recipe& recipe) {
  ModelConfig mc = recipe.model;
  mc.dtype = recipe.train.precision == "f64" ? DType::f64 : DType::f32;
  if (recipe.train.precision == "bf16") mc.compute_dtype = DType::bf16;
  return mc;
}

std::unique_ptr<LanguageModel> build_placed_model(const Recipe& recipe) {
  recipe.check_device();
  Generator init_gen(recipe.run.seed);
  std::unique_ptr<LanguageModel> model = build_model(placed_model_config(recipe), init_gen);
  model->to_(recipe.device());
#ifdef EAT_WITH_CUDA
  // Process-wide: set on every device run, so a TF32 run does not leak into the next one.
  if (recipe.device() == Device::cuda) cuda::set_allow_tf32(recipe.train.tf32);
#endif
  return model;
}

}  // namespace eat
