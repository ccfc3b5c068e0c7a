#pragma once
// RAT's chunk-reset gated scan over x, gate_logit [B, T, C]: g = sigmoid(gate_logit),
//     h_t = g_t h_{t-1} + (1 - g_t) x_t,   h_{t-1} = 0 where (phase + t) % chunk == 0,
// h_{-1} = initial [B, C] (zero when null) when token 0 continues a chunk (phase % chunk != 0).
// The tokens split into segments, the parts of chunks inside [0, T): the first one is
// chunk - phase % chunk tokens long (or fewer), the next ones chunk tokens, the last one ragged.
// Segments are independent except for the first one's initial state, so kernels spread
// (batch, segment) over threads and walk time inside a segment.
#include <cstdint>

#include "kernels/backends.h"

#if defined(__CUDACC__)
#define EAT_CHUNK_SCAN_HD __host__ __device__
#else
#define EAT_CHUNK_SCAN_HD
#endif

namespace eat {

struct ChunkScanShape {
  int64_t B, T, C;
  int64_t chunk;      // >= 1
  int64_t phase = 0;  // >= 0: tokens of the current chunk seen before token 0

  // Token 0 continues a chunk begun before it: the scan starts from initial.
  EAT_CHUNK_SCAN_HD bool continues() const { return phase % chunk != 0; }
  // Length of the first segment before the sequence end cuts it.
  EAT_CHUNK_SCAN_HD int64_t first_length() const { return chunk - phase % chunk; }
  EAT_CHUNK_SCAN_HD int64_t segments() const {
    const int64_t first = first_length();
    return T <= 0 ? 0 : T <= first ? 1 : 1 + (T - first + chunk - 1) / chunk;
  }
  // Tokens [begin, end) of segment s.
  EAT_CHUNK_SCAN_HD int64_t begin(int64_t s) const { return s == 0 ? 0 : first_length() + (s - 1) * chunk; }
  EAT_CHUNK_SCAN_HD int64_t end(int64_t s) const {
    const int64_t e = s == 0 ? first_length() : begin(s) + chunk;
    return e < T ? e : T;
  }
};

EAT_DECLARE_KERNELS(
// h [B, T, C]; initial [B, C] may be null (zero).
template <typename T>
void chunk_scan_forward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, T* h);
// From dh, the gradients dx, dgate_logit [B, T, C] and dinitial [B, C], each of which may be null
// (dinitial is zero unless token 0 continues a chunk). h is recomputed (f32 at least), not read:
// a bf16 output would round the h_{t-1} - x_t that dgate_logit takes.
template <typename T>
void chunk_scan_backward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, const T* dh, T* dx,
                         T* dgate_logit, T* dinitial);
)

}  // namespace eat
