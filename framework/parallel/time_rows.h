#pragma once
// Moving token rows of [B, T, ...] tensors on the time axis (axis 1), on the CPU (memcpy per
// block, the blocks spread over the threads) or on CUDA (one strided copy on the compute stream,
// ordered with the kernels and the collectives around it): the packing, unpacking and gradient
// accumulation behind the halo exchange and the sequence joins of sequence parallelism.
#include <cstddef>
#include <cstdint>

#include "framework/tensor.h"

namespace eat {

// `blocks` blocks of `width` bytes from src (i-th at src + i src_pitch) to dst (dst + i dst_pitch),
// both on `device`.
void copy_blocks(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, int64_t blocks,
                 Device device);

// x's shape with the time axis set to T.
Shape with_time(const Tensor& x, int64_t T);

// Copies `count` tokens of every sequence: rows [from_t, from_t + count) of `from` to rows
// [to_t, to_t + count) of `to`. Both share the dtype, the device, B and the trailing shape.
void copy_time(const Tensor& from, int64_t from_t, const Tensor& to, int64_t to_t, int64_t count);

// Decoding caches (not differentiable): a's rows, then b's ([B, Ta, ...] and [B, Tb, ...] ->
// [B, Ta + Tb, ...]; a may be undefined: no rows yet), and the last n rows of x (all of them when
// it has fewer, or when n < 0).
Tensor append_time(const Tensor& a, const Tensor& b);
Tensor last_rows(const Tensor& x, int64_t n);

// to[:, to_t + i] += from[:, i] for the n tokens of `from` [B, n, ...]: the rows are taken out,
// summed by the add op (so on the tensors' device and in their dtype, bf16 on CUDA included) and
// put back. Not differentiable: it accumulates gradients inside backward functions.
void add_time(const Tensor& from, const Tensor& to, int64_t to_t);

}  // namespace eat
