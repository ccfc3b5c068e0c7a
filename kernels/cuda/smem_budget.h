#pragma once
// The dynamic shared memory per block that the tiled kernels (flash attention, the Lightning
// sweep) size their tiles for. Their default tiles need up to about 145 KiB at head width 128,
// which A100 and H100 allow; sm_86/sm_89 cards (A10, L4, L40S, RTX 30/40) allow 101,376 bytes, and
// there the kernels take smaller tiles. A process-wide cap lets any GPU run those smaller tiles.
namespace eat::cuda {

// The device's opt-in limit of dynamic shared memory per block, lowered to the cap when one is set.
int smem_budget();

// Caps smem_budget() at `bytes` for the whole process (0 lifts the cap). For tests: with the cap at
// 101,376 bytes an H100 runs the tiles an L4 runs.
void cap_smem_budget(int bytes);

}  // namespace eat::cuda
