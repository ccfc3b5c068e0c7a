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

// Two walks per segment, one sigmoid per token. Forwards, h recomputed: g_t is kept in dx's row
// (or scratch) and h_{t-1} - x_t in dgate_logit's. Backwards, dtot_t = dh_t + g_{t+1} dtot_{t+1}
// (zero past the segment end) turns them in place into dx_t = (1 - g_t) dtot_t and
// dgate_logit_t = dtot_t (h_{t-1} - x_t) g_t (1 - g_t). dinitial = g_0 dtot_0 when token 0
// continues a chunk.
template <typename T>
void chunk_scan_backward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, const T* dh, T* dx,
                         T* dgate_logit, T* dinitial) {
  const int64_t C = s.C;
  if (dinitial) std::fill(dinitial, dinitial + s.B * C, T(0));
  if (!dx && !dgate_logit && !(dinitial && s.continues())) return;
  std::vector<T> scratch(dx ? 0 : static_cast<size_t>(s.B * s.T * C));
  T* gates = dx ? dx : scratch.data();
  T* diffs = dgate_logit;  // h_{t-1} - x_t, needed only for dgate_logit
  for_segments<T>(s, [&](int64_t b, int64_t segment, T* g, T* state) {
    const int64_t t0 = s.begin(segment), t1 = s.end(segment);
    const T* prev = state_before(s, initial, b, segment);
    for (int64_t c = 0; c < C; ++c) state[c] = prev ? prev[c] : T(0);  // h_{t-1}
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = (b * s.T + t) * C;
      sigmoid_block(gate_logit + row, g, C);
      const T* xr = x + row;
      T* gr = gates + row;
      if (diffs)
        for (int64_t c = 0; c < C; ++c) diffs[row + c] = state[c] - xr[c];
      for (int64_t c = 0; c < C; ++c) {
        gr[c] = g[c];
        state[c] = g[c] * state[c] + (T(1) - g[c]) * xr[c];
      }
    }
    std::fill(state, state + C, T(0));  // now g_{t+1} dtot_{t+1}
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t row = (b * s.T + t) * C;
      const T* dhr = dh + row;
      T* gr = gates + row;
      if (diffs)
        for (int64_t c = 0; c < C; ++c) {
          const T gc = gr[c], dtot = dhr[c] + state[c];
          diffs[row + c] *= dtot * gc * (T(1) - gc);
        }
      for (int64_t c = 0; c < C; ++c) {
        const T gc = gr[c], dtot = dhr[c] + state[c];
        gr[c] = (T(1) - gc) * dtot;
        state[c] = gc * dtot;
      }
    }
    if (segment == 0 && s.continues() && dinitial) std::copy(state, state + C, dinitial + b * C);
  });
}

#define EAT_INSTANTIATE(T)                                                                                        \
  template void chunk_scan_forward<T>(const ChunkScanShape&, const T*, const T*, const T*, T*);                  \
  template void chunk_scan_backward<T>(const ChunkScanShape&, const T*, const T*, const T*, const T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
