#pragma once
// Softmax attention over chunk summaries with one private key per query (RAT's inter-chunk
// attention merged with its own-token term). q, k [B, T, H, d] and v [B, T, H, e] (HeadShape):
// each query's own key and value; k_sum [B, C, H, d] and v_sum [B, C, H, e]: the summaries of
// chunks 0 .. C-1. Query t sits at global position query_offset + t, in chunk
// c(t) = (query_offset + t) / chunk, and sees the summaries j < visible(t) = min(c(t), C) plus
// its own key, in one softmax:
//     s_tj = scale q_t.k_sum_j (j < visible(t)),  s_t* = scale q_t.k_t,
//     y_t  = (sum_j exp(s_tj - lse_t) v_sum_j) + exp(s_t* - lse_t) v_t.
// The own key is always there, so lse_t is finite and a row without summaries gives y_t = v_t.
// lse [B, H, T] (RowStat: f64 on the CPU, f32 on CUDA) is saved for the backward, which
// recomputes the probabilities p = exp(s - lse) and, with D_t = dy_t.y_t and ds = p (dy.v - D_t):
//     dq_t = scale (sum_j ds_tj k_sum_j + ds_t* k_t),  dk_t = scale ds_t* q_t,  dv_t = p_t* dy_t,
//     dk_sum_j = scale sum_t ds_tj q_t,               dv_sum_j = sum_t p_tj dy_t.
#include <algorithm>
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/head_shape.h"

namespace eat {

struct SummaryAttentionArgs {
  int64_t summaries = 0;  // C: rows of k_sum and v_sum
  int64_t chunk = 16;
  int64_t query_offset = 0;
  double scale = 1.0;

  // The summaries query t sees: j < visible(t). Non-decreasing in t.
  int64_t visible(int64_t t) const { return std::min((query_offset + t) / chunk, summaries); }
  // The queries that see summary j: t >= first_query(j) (T when none does).
  int64_t first_query(int64_t j, int64_t T) const {
    return std::clamp<int64_t>((j + 1) * chunk - query_offset, 0, T);
  }
};

// Backward: every gradient pointer is written in full (overwritten, not accumulated).
EAT_DECLARE_KERNELS(
template <typename T>
void summary_attention_forward(const HeadShape& s, const SummaryAttentionArgs& a, const T* q, const T* k, const T* v,
                               const T* k_sum, const T* v_sum, T* y, RowStat* lse);
template <typename T>
void summary_attention_backward(const HeadShape& s, const SummaryAttentionArgs& a, const T* q, const T* k,
                                const T* v, const T* k_sum, const T* v_sum, const T* y, const RowStat* lse,
                                const T* dy, T* dq, T* dk, T* dv, T* dk_sum, T* dv_sum);
)

}  // namespace eat
