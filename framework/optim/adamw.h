#pragma once
// AdamW over named parameters. Its state (moments and per-parameter step counts) is addressable
// by parameter name so a checkpoint can store and restore it exactly.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "framework/nn/module.h"

namespace eat {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// Which parameters get weight decay. The default decays matrices only: no decay on norms,
// biases and embeddings.
using DecayRule = std::function<bool(const Parameter&)>;
bool decay_matrices_only(const Parameter& p);
// Decay the parameters whose kind is in `kinds`, except names containing any of `exclude`.
DecayRule decay_rule(std::vector<ParamKind> kinds, std::vector<std::string> exclude = {});

class AdamW {
 public:
  struct State {
    Tensor m, v;      // first and second moments, shaped like the parameter (its type on the CPU, f32 on the device)
    int64_t step = 0; // updates applied to this parameter
  };

  AdamW(std::vector<Parameter> params, AdamWConfig config, DecayRule decays = decay_matrices_only);

  // Applies one update with learning rate lr to every parameter that has a gradient, taken times
  // grad_scale (clip_factor's). The CPU update scales each gradient as it reads it and leaves the
  // gradients as they are; on CUDA the gradients are scaled in place first.
  void step(double lr, double grad_scale = 1.0);
  void zero_grad();

  const AdamWConfig& config() const { return config_; }
  const std::vector<Parameter>& params() const { return params_; }
  bool decays(const std::string& name) const;
  State& state(const std::string& name);
  const std::map<std::string, State>& states() const { return state_; }

 private:
  std::vector<Parameter> params_;
  AdamWConfig config_;
  std::map<std::string, bool> decay_;
  std::map<std::string, State> state_;
};

// Global L2 norm of all gradients (f64, fixed order).
double grad_norm(const std::vector<Parameter>& params);
// The factor that clips gradients of global norm `norm` to max_norm: max_norm / (norm + 1e-6) when
// max_norm > 0 and the norm exceeds it, else 1.
double clip_factor(double norm, double max_norm);
// grad_norm, and the gradients scaled in place by clip_factor. Returns the norm before clipping.
// (A training step passes the factor to AdamW::step instead: one pass over the gradients fewer.)
double clip_grad_norm(const std::vector<Parameter>& params, double max_norm);

}  // namespace eat
