#pragma once
// Runs the tiled kernels with the shared memory of a smaller GPU: while a SmemCap is in scope they
// size their tiles for at most `bytes` per block, whatever this device allows.
#include "kernels/cuda/smem_budget.h"

namespace eat::test {

// The opt-in dynamic shared memory per block of sm_86/sm_89 GPUs (A10, L4, L40S, RTX 30/40).
inline constexpr int kSm86SmemBytes = 101376;

class SmemCap {
 public:
  explicit SmemCap(int bytes) { cuda::cap_smem_budget(bytes); }
  ~SmemCap() { cuda::cap_smem_budget(0); }
  SmemCap(const SmemCap&) = delete;
  SmemCap& operator=(const SmemCap&) = delete;
};

}  // namespace eat::test
