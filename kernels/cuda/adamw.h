#pragma once
// One AdamW step on the device (kernels/cpu/adamw.h's update, same AdamWStep hyperparameters).
// Moments are f32 whatever the parameter's storage type; the update is computed in f32.
#include <cstdint>

#include "kernels/cpu/adamw.h"

namespace eat::cuda {

using cpu::AdamWStep;

// param and grad are T (f32 or bf16). With master == null the parameter's own value is updated
// (read as f32, written back). With an f32 master copy, the master is updated and param receives
// its rounding (the bf16 copy a bf16 model computes with).
template <typename T>
void adamw_update(T* param, const T* grad, float* m, float* v, float* master, int64_t n, const AdamWStep& s);

}  // namespace eat::cuda
