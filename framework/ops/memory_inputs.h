#pragma once
// The input checks shared by Titans' memory ops (linear_memory, mlp_memory): the three gate
// logits [B, T, H] alongside q, the options, and the dtype the ops keep their states in.
#include <utility>

#include "framework/ops.h"
#include "framework/tensor.h"

namespace eat {

// States stay f32 on CUDA whatever the storage (kernels/memory_checkpoints.h, MemoryState), q's
// dtype on the CPU.
inline DType memory_state_dtype(const Tensor& q) { return q.device() == Device::cpu ? q.dtype() : DType::f32; }

// theta, eta and alpha: required, floating point of q's dtype on q's device, [B, T, H] for q [B, T, H, d].
inline void check_memory_gates(const char* op, const MemoryGateLogits& gates, const Tensor& q) {
  for (auto [name, logit] : {std::pair{"theta", &gates.theta}, {"eta", &gates.eta}, {"alpha", &gates.alpha}}) {
    EAT_CHECK(logit->defined(), op, ": the ", name, " logits are required");
    check_floating(op, *logit);
    check_same_dtype(op, q, *logit);
    check_same_device(op, q, *logit);
    const Shape want{q.size(0), q.size(1), q.size(2)};
    EAT_CHECK(logit->shape() == want, op, ": the ", name, " logits ", shape_str(logit->shape()),
              " must be [B, T, H] = ", shape_str(want), " for q ", shape_str(q.shape()));
  }
}

inline void check_memory_options(const char* op, const NeuralMemoryOptions& options) {
  EAT_CHECK(options.chunk >= 1, op, ": chunk must be >= 1, got ", options.chunk);
  EAT_CHECK(options.max_lr > 0, op, ": max_lr must be > 0, got ", options.max_lr);
  EAT_CHECK(options.checkpoint_chunks >= 0, op, ": checkpoint_chunks must be >= 0 (0: about sqrt(chunks)), got ",
            options.checkpoint_chunks);
}

}  // namespace eat
