#include "framework/train/memory_estimate.h"

#include <cstdio>

#include "base/error.h"

namespace eat {

namespace {

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace

double parameter_floor(const ModelConfig& model) {
  const double d = static_cast<double>(model.d_model);
  return static_cast<double>(model.vocab_size) * d + static_cast<double>(model.n_layers) * 2.0 * d * d;
}

MemoryEstimate estimate_training_memory(const ModelConfig& model, double parameters, int64_t micro, int64_t local_len,
                                        Device device) {
  const double param_bytes = static_cast<double>(dtype_size(model.dtype));
  const double moment_bytes = device == Device::cuda ? 4.0 : param_bytes;
  const double tokens = static_cast<double>(micro) * static_cast<double>(local_len);
  const double per_token = 8.0 * static_cast<double>(model.n_layers) * static_cast<double>(model.d_model) +
                           2.0 * static_cast<double>(model.vocab_size);
  MemoryEstimate e;
  e.parameters = parameters * param_bytes;
  e.gradients = parameters * param_bytes;
  e.moments = 2.0 * parameters * moment_bytes;
  e.activations = tokens * per_token * static_cast<double>(dtype_size(model.activation_dtype()));
  return e;
}

void check_training_memory(const Recipe& recipe, const MemoryEstimate& need, double available,
                           const std::string& available_what, bool floor, bool resident) {
  const double wanted = resident ? need.total() - need.parameters : need.total();
  if (available < 0 || wanted <= available) return;
  const ModelConfig& m = recipe.model;
  fail(recipe.source, ": model.d_model = ", m.d_model, ", model.n_layers = ", m.n_layers, ", model.vocab_size = ",
       m.vocab_size, " need ", floor ? "at least " : "", gib(wanted), " per rank to train (parameters ", gib(need.parameters),
       resident ? " already allocated" : "", ", gradients ", gib(need.gradients), ", AdamW moments ", gib(need.moments),
       ", activations of one micro-batch about ", gib(need.activations), "), but ", available_what, " is ", gib(available),
       "; make the model, train.micro_batch or data.seq_len smaller");
}

}  // namespace eat
