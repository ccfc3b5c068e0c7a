#pragma once
// Halo exchange for sequence parallelism: rank r of the group holds tokens [r L, (r + 1) L) of
// every sequence, and ops that look a fixed distance back in time (short convolutions, sliding-
// window attention) need the h tokens just before its share. Those come from the earlier ranks
// by point-to-point shifts (send/recv), never by gathering the whole sequence, and the gradient
// of the borrowed rows goes back to the rank that owns them.
//
// Devices: everything here runs on CPU tensors (f32, f64; the forward moves any dtype) and on
// CUDA tensors (f32, bf16). On CUDA the rows are packed and unpacked by strided copies on the
// compute stream (time_rows.h), the shifts go through the communicator's NCCL path, and the
// returned halo gradient is added by the add op's CUDA kernel: no host copy of the data.
#include "framework/comm/communicator.h"
#include "framework/tensor.h"

namespace eat {

// x [B, L, ...] (time on axis 1, CPU or CUDA). Returns [B, halo + L, ...]: rows [0, halo) are the tokens
// at global positions [r L - halo, r L), zeros where that is before the sequence start, then x.
// A halo longer than L takes rows from several earlier ranks (one shift per rank crossed).
// Backward: the gradient of the halo rows is sent back and added to the owners' gradients.
Tensor halo_exchange(const Tensor& x, int64_t halo, Communicator& group);

// Rows [begin, end) of the time axis (axis 1) of x [B, T, ...], as a new tensor; differentiable.
Tensor narrow_time(const Tensor& x, int64_t begin, int64_t end);
// a's rows, then b's: [B, Ta, ...] and [B, Tb, ...] -> [B, Ta + Tb, ...]; differentiable (the
// decoding caches' append_time is not).
Tensor concat_time(const Tensor& a, const Tensor& b);

// The causal depthwise short convolution (ops.h short_conv) of a sequence split over the group:
// x [B, L, C] is this rank's share, weight [C, k]. Needs a halo of k - 1 tokens. Equals the rows
// of short_conv on the whole sequence; the weight and bias gradients are this rank's part of the
// whole gradient (sum them over the group, as for any replicated parameter).
Tensor short_conv_sp(const Tensor& x, const Tensor& weight, const Tensor& bias, Communicator& group);

}  // namespace eat
