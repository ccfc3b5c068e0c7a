#pragma once
// Sequence parallelism for decayed linear attention, LASP-2 style (spec: lasp2.md), and for
// softmax attention, LASP-2H style, built from the public pieces (state_gather.h, time_join.h,
// halo.h, collective_ops.h). Rank r of the sequence-parallel group holds tokens [r L, (r + 1) L)
// of every sequence (L = T / S). Forward:
// each rank sums its local final state m_r (the state its tokens leave from a zero start), starts
// one AllGather of the m_r (B H d e numbers per rank, whatever T is) and runs the chunked kernel
// on its tokens from a zero state while the gather is in flight; the incoming state of rank r is
// the decay-weighted prefix
//     S_in(r) = sum_{j < r} lambda^(L (r - 1 - j)) m_j
// and the output is local + lambda^(t+1) q_t S_in(r). Backward (through autograd): the gradients
// of the gathered states are reduce-scattered back to their ranks (one collective of the same
// size), then flow into each rank's local kernel through its final-state output.
//
// Devices: every op here takes CPU tensors (collectives over MPI) or CUDA tensors (f32, bf16;
// collectives over NCCL, which needs a build with CUDA, MPI and NCCL). On CUDA the state sum,
// the local attention, the readout of the incoming state and the weighted fold run as CUDA
// kernels, the gathered k and v are joined by strided device copies, and the overlapped gather
// runs on the communication stream while the local kernel runs on the compute stream. Only the
// fold's weights (S B H d e numbers) are built on the host and copied over.
#include <vector>

#include "framework/comm/communicator.h"
#include "framework/ops.h"
#include "framework/parallel/collective_ops.h"

namespace eat {

// q, k [B, L, H, d], v [B, L, H, e]: this rank's tokens. Returns this rank's output [B, L, H, e],
// equal to the matching rows of lightning_attention on the whole sequence. overlap = false waits
// for the gather before the local kernel (the same arithmetic, bit for bit, without the overlap).
Tensor lightning_attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<double>& decay,
                              Communicator& sp_group, const LightningOptions& options = {}, bool overlap = true);

// Sequence parallelism for softmax attention, LASP-2H style: every rank's k and v [B, L, H, *]
// are all-gathered into the whole sequence's [B, S L, H, *] (RoPE already applied at global
// positions), and this rank's queries attend causally at positions [r L, (r + 1) L). Backward:
// the gradients of the gathered k and v are reduce-scattered back to their ranks. Tiled kernel.
// With a sliding window (options.window_left >= 0) a query sees window_left keys back, so rank r
// needs only that many keys and values before its share, which a halo exchange (halo.h) brings
// from the earlier ranks: B W H (d + e) numbers per rank whatever the sequence length (windows
// wider than a share reach several ranks back).
Tensor attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& sp_group,
                    AttentionOptions options = {});

// The keys and values this rank's queries attend to under sequence parallelism (k, v [B, L, H, *]:
// its share; RoPE already applied at global positions), and the position of its query 0 among
// them: with a sliding window the window_left rows before its share (a halo exchange, halo.h,
// from the earlier ranks; fewer at the sequence start) and its own, else every rank's (an
// AllGather, LASP-2H). attention_sp is attention over these; a mixer that weighs its heads (MoH)
// runs its own kernel over them. Differentiable: the gradients go back to their ranks.
struct AttentionKeys {
  Tensor keys, values;
  int64_t query_offset = 0;
};
AttentionKeys attention_sp_keys(const Tensor& k, const Tensor& v, Communicator& sp_group, const AttentionOptions& options);

}  // namespace eat
