#pragma once
// Decayed causal linear attention, chunked (Lightning Attention-2), the training kernel. The
// sequence is cut into blocks of C tokens (the last one may be shorter). Within a block the
// output is the masked product [(Q K^T) o M] V; across blocks it flows through the d x e state
// entering the block. Work is O(T C (d + e) + T d e); memory O(d e) per thread, or
// O(T / C * d e) per head on the block-parallel schedule.
// q, k [B, T, H, d], v [B, T, H, e], decay [H], states [B, H, d, e] (see lightning_common.h).
#include "kernels/cpu/chunk_schedule.h"
#include "kernels/cpu/lightning_common.h"

namespace eat::cpu {

// How the work is spread over threads: kernels/cpu/chunk_schedule.h (per_head, per_block,
// automatic). Both schedules give bit-identical results.

// The number of blocks of length `block` that cover T tokens (the last may be shorter).
inline int64_t lightning_block_count(int64_t T, int64_t block) { return chunk_count(T, block); }

// s0 may be null (zero initial state). o and final_state are overwritten. block >= 1.
// block_states, when not null, receives the state entering every block, [B, H, blocks, d, e]
// (lightning_block_count(T, block) of them, the first being S0 or zero): the backward then needs
// no forward sweep of its own to rebuild them, which saves a pass over q, k, v and dO and the
// state arithmetic, for memory the size of one [B, T, H, d] tensor per 64-token block of d = 64.
template <typename T>
void lightning_chunked_forward(const HeadShape& s, int64_t block, const double* decay, const T* q,
                               const T* k, const T* v, const T* s0, T* o, T* final_state,
                               ChunkedSchedule schedule = ChunkedSchedule::automatic, T* block_states = nullptr);

// dout and dfinal are the gradients of o and of the final state. Each of dq, dk, dv, ds0 may be
// null (that gradient is not wanted); the others are overwritten. block_states, when not null,
// are the forward's (same block size); the results are bit-identical either way.
template <typename T>
void lightning_chunked_backward(const HeadShape& s, int64_t block, const double* decay, const T* q,
                                const T* k, const T* v, const T* s0, const T* dout, const T* dfinal, T* dq, T* dk,
                                T* dv, T* ds0, ChunkedSchedule schedule = ChunkedSchedule::automatic,
                                const T* block_states = nullptr);

}  // namespace eat::cpu
