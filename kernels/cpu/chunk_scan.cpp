// The chunk-reset gated scan on the CPU: threads take (batch, segment) pairs in a static
// schedule; inside a segment time runs in order and each token is one pass over its C contiguous
// channels (vectorised, the gate through sigmoid_block). Every value is computed by one thread
// in a fixed order, so results do not depend on the thread count.
#include "kernels/chunk_scan.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sigmoid_block.h"

namespace eat::cpu {

namespace {

// Calls f(b, segment, gate, state) for every (batch, segment) pair, spread over the threads; gate
// and state are the calling thread's C-long scratch rows. The rows are aligned: Eigen's exp takes
// its scalar path for the elements before the destination's first aligned packet, and a gate
// must not depend on where the allocator put the row (the same inputs give the same bits).
template <typename T, typename F>
void for_segments(const ChunkScanShape& s, F&& f) {
  const int64_t segments = s.segments(), tasks = s.B * segments;
#pragma omp parallel if(parallel_worth(s.B * s.T * s.C))
  {
    std::vector<T, Eigen::aligned_allocator<T>> gate(static_cast<size_t>(s.C)), state(static_cast<size_t>(s.C));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) f(task / segments, task % segments, gate.data(), state.data());
  }
}

// The state before segment `segment` of batch b: initial when the first segment continues a
// chunk, else zero (null).
template <typename T>
const T* state_before(const ChunkScanShape& s, const T* initial, int64_t b, int64_t segment) {
  return segment == 0 && s.continues() && initial ? initial + b * s.C : nullptr;
}

}  // namespace

template <typename T>
void chunk_scan_forward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, T* h) {
  const int64_t C = s.C;
  for_segments<T>(s, [&](int64_t b, int64_t segment, T* g, T*) {
    const T* prev = state_before(s, initial, b, segment);
    for (int64_t t = s.begin(segment); t < s.end(segment); ++t) {
      const int64_t row = (b * s.T + t) * C;
      sigmoid_block(gate_logit + row, g, C);
      const T* xr = x + row;
      T* hr = h + row;
      if (prev)
        for (int64_t c = 0; c < C; ++c) hr[c] = g[c] * prev[c] + (T(1) - g[c]) * xr[c];
      else
        for (int64_t c = 0; c < C; ++c) hr[c] = (T(1) - g[c]) * xr[c];
      prev = hr;
    }
  });
}

// Two walks per segment: backwards, dtot_t = dh_t + g_{t+1} dtot_{t+1} (zero past the segment
// end), kept in dx's rows (or scratch); forwards, h recomputed, dgate_logit_t = dtot_t (h_{t-1} -
// x_t) g_t (1 - g_t) and dx_t = (1 - g_t) dtot_t in place. dinitial = g_0 dtot_0 when token 0
// continues a chunk.
template <typename T>
void chunk_scan_backward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, const T* dh, T* dx,
                         T* dgate_logit, T* dinitial) {
  const int64_t C = s.C;
  if (dinitial) std::fill(dinitial, dinitial + s.B * C, T(0));
  if (!dx && !dgate_logit && !(dinitial && s.continues())) return;
  std::vector<T> scratch(dx ? 0 : static_cast<size_t>(s.B * s.T * C));
  T* dtot = dx ? dx : scratch.data();
  for_segments<T>(s, [&](int64_t b, int64_t segment, T* g, T* h_prev) {
    const int64_t t0 = s.begin(segment), t1 = s.end(segment);
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t row = (b * s.T + t) * C;
      T* dr = dtot + row;
      const T* dhr = dh + row;
      if (t == t1 - 1) {
        std::copy(dhr, dhr + C, dr);
      } else {
        sigmoid_block(gate_logit + row + C, g, C);
        const T* next = dr + C;
        for (int64_t c = 0; c < C; ++c) dr[c] = dhr[c] + g[c] * next[c];
      }
    }
    if (segment == 0 && s.continues() && dinitial) {
      sigmoid_block(gate_logit + b * s.T * C, g, C);
      const T* d0 = dtot + b * s.T * C;
      for (int64_t c = 0; c < C; ++c) dinitial[b * C + c] = g[c] * d0[c];
    }
    const T* prev = state_before(s, initial, b, segment);
    for (int64_t c = 0; c < C; ++c) h_prev[c] = prev ? prev[c] : T(0);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = (b * s.T + t) * C;
      sigmoid_block(gate_logit + row, g, C);
      const T* xr = x + row;
      T* dr = dtot + row;
      T* dlr = dgate_logit ? dgate_logit + row : nullptr;
      for (int64_t c = 0; c < C; ++c) {
        if (dlr) dlr[c] = dr[c] * (h_prev[c] - xr[c]) * g[c] * (T(1) - g[c]);
        dr[c] *= T(1) - g[c];
        h_prev[c] = g[c] * h_prev[c] + (T(1) - g[c]) * xr[c];
      }
    }
  });
}

#define EAT_INSTANTIATE(T)                                                                                        \
  template void chunk_scan_forward<T>(const ChunkScanShape&, const T*, const T*, const T*, T*);                  \
  template void chunk_scan_backward<T>(const ChunkScanShape&, const T*, const T*, const T*, const T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
