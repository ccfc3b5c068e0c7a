#pragma once
// The K/V gather of sequence parallelism (LASP-2H): every rank's share [B, L, ...] of a sequence
// split over the group becomes the whole sequence [B, S L, ...] on every rank, differentiably (the
// gradients of the other ranks' rows go back to them). For mixers that need every earlier token,
// such as softmax attention; CPU and CUDA tensors (rows moved by strided copies, time_rows.h).
#include "framework/comm/communicator.h"
#include "framework/tensor.h"

namespace eat {

// [S, B, L, ...] (rank-major pieces, as all_gather_op returns them) -> [B, S L, ...], and back in
// the backward. Needs at least one axis after the time axis.
Tensor join_time(const Tensor& pieces);

// x [B, L, ...] on every rank -> [B, S L, ...]: join_time of the AllGather of x. Backward: the
// gradient of the whole sequence is reduce-scattered, each rank keeping its own rows' sum.
Tensor gather_time(const Tensor& x, Communicator& group);

}  // namespace eat
