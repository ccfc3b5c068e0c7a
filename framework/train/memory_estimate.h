#pragma once
// Whether a training run fits in memory, decided before anything large is allocated: a model too
// large for the machine is refused at start with the numbers, not found by the allocator (or the
// kernel's OOM killer) in the middle of building it or at the first step.
#include <cstdint>
#include <string>

#include "framework/config/recipe.h"
#include "framework/model.h"

namespace eat {

// One rank's bytes, in double: absurd sizes must not wrap around.
struct MemoryEstimate {
  double parameters = 0;
  double gradients = 0;    // one per parameter, of its type
  double moments = 0;      // AdamW's two, of the parameter's type on the CPU, f32 on CUDA
  double activations = 0;  // what one micro-batch keeps for its backward (see activation_bytes)
  double total() const { return parameters + gradients + moments + activations; }
};

// A lower bound on any family's parameter count, from the keys every family has: the embedding
// (vocab_size x d_model) and, per layer, at least a value and an output projection (2 d_model^2).
// A test holds every registered family to it.
double parameter_floor(const ModelConfig& model);

// The estimate for `parameters` parameters of model's types on `device`, training micro-batches
// of `micro` sequences of `local_len` tokens. Activations: per token and layer 8 d_model values
// (normalised inputs, q, k, v, the mixer's output and the residuals) plus 2 vocab_size for the
// logits and their gradient; an underestimate for every family, so a run is never refused for it.
MemoryEstimate estimate_training_memory(const ModelConfig& model, double parameters, int64_t micro, int64_t local_len,
                                        Device device);

// An error when `need` exceeds `available` bytes (unknown, -1: no check): it names the recipe's
// size keys, each part of the estimate and what is available (`available_what`, e.g. "the host's
// MemAvailable"). `floor` says the parameter count is parameter_floor's (the message says "at
// least"); `resident` counts parameters already allocated, so they are left out of the need.
void check_training_memory(const Recipe& recipe, const MemoryEstimate& need, double available,
                           const std::string& available_what, bool floor, bool resident);

}  // namespace eat
