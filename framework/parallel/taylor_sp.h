#pragma once
// Sequence parallelism for BASED's Taylor linear attention, LASP-2 style (lasp2.h): rank r of the
// group holds tokens [r L, (r + 1) L). Each rank sums its local state [S | z] from a zero start
// (taylor_state_sum: B H D' (e + 1) numbers, whatever L is), starts one AllGather of them and runs
// the local pass while it is in flight; the pass keeps the unnormalised [N | Z] of its tokens
// (taylor_attention_sums) because the denominator makes the normalised output of a zero start
// uncorrectable. Then it waits, sums the earlier ranks' states into the incoming state (numerator
// and normaliser alike) and adds its readout phi(q) [S | z] before the one division
// (taylor_state_readout). Backward (through autograd): the gradients of the gathered states are
// reduce-scattered back to their ranks.
#include "framework/comm/communicator.h"
#include "framework/ops.h"

namespace eat {

// q, k [B, L, H, f], v [B, L, H, e]: this rank's tokens. Returns this rank's output [B, L, H, e],
// equal to the matching rows of taylor_attention on the whole sequence. overlap = false waits for
// the gather before the local pass (the same arithmetic, bit for bit, without the overlap).
Tensor taylor_attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& sp_group,
                           const TaylorOptions& options = {}, bool overlap = true);

}  // namespace eat
