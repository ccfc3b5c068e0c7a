// The chunk-reset gated scan on the device: one thread per (batch, segment, channel) walks its
// segment's tokens in order, in f32 whatever the storage. Neighbouring threads are neighbouring
// channels of one token row, so every load and store is coalesced; a segment is at most one
// chunk long, so training (chunk 16) has B * T / 16 * C threads.
// The backward walks each segment twice: backwards for dtot_t = dh_t + g_{t+1} dtot_{t+1}, kept
// in f32 scratch by the thread that reads it back, then forwards, recomputing h in f32 for
// dgate_logit_t = dtot_t (h_{t-1} - x_t) g_t (1 - g_t) and dx_t = (1 - g_t) dtot_t. No thread
// reads another's values: no synchronisation, no atomics, the same bits on every run.
#include <memory>

#include "kernels/chunk_scan.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"
#include "runtime/cuda/check.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

constexpr int kThreads = 256;

// The thread's (batch, segment, channel) for index e in [0, B * segments * C).
struct Lane {
  int64_t b, segment, c;
};

__device__ __forceinline__ Lane lane_of(const ChunkScanShape& s, int64_t segments, int64_t e) {
  const int64_t pair = e / s.C;
  return {pair / segments, pair % segments, e % s.C};
}

// The state before the lane's first token: initial when token 0 continues a chunk, else zero.
template <typename D>
__device__ __forceinline__ float state_before(const ChunkScanShape& s, const D* initial, const Lane& l) {
  return l.segment == 0 && s.continues() && initial ? to_f32(initial[l.b * s.C + l.c]) : 0.0f;
}

template <typename D>
__global__ void chunk_scan_forward_kernel(ChunkScanShape s, int64_t segments, const D* x, const D* gate_logit,
                                          const D* initial, D* h, int64_t n) {
  EAT_GRID_STRIDE(e, n) {
    const Lane l = lane_of(s, segments, e);
    float state = state_before(s, initial, l);
    for (int64_t t = s.begin(l.segment), end = s.end(l.segment); t < end; ++t) {
      const int64_t i = (l.b * s.T + t) * s.C + l.c;
      const float g = sigmoid_f32(to_f32(gate_logit[i]));
      state = g * state + (1.0f - g) * to_f32(x[i]);
      h[i] = from_f32<D>(state);
    }
  }
}

// dtot: f32 scratch [B, T, C]. dinitial, when wanted, is already zero.
template <typename D>
__global__ void chunk_scan_backward_kernel(ChunkScanShape s, int64_t segments, const D* x, const D* gate_logit,
                                           const D* initial, const D* dh, D* dx, D* dgate_logit, D* dinitial,
                                           float* dtot, int64_t n) {
  EAT_GRID_STRIDE(e, n) {
    const Lane l = lane_of(s, segments, e);
    const int64_t t0 = s.begin(l.segment), t1 = s.end(l.segment);
    const int64_t base = l.b * s.T * s.C + l.c;  // element (b, 0, c)
    float carry = 0.0f, g = 0.0f;                // carry = g_{t+1} dtot_{t+1}
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t i = base + t * s.C;
      const float d = to_f32(dh[i]) + carry;
      dtot[i] = d;
      g = sigmoid_f32(to_f32(gate_logit[i]));
      carry = g * d;
    }
    if (l.segment == 0 && s.continues() && dinitial) dinitial[l.b * s.C + l.c] = from_f32<D>(carry);
    if (!dx && !dgate_logit) continue;
    float state = state_before(s, initial, l);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i = base + t * s.C;
      const float xi = to_f32(x[i]), d = dtot[i];
      g = sigmoid_f32(to_f32(gate_logit[i]));
      if (dgate_logit) dgate_logit[i] = from_f32<D>(d * (state - xi) * g * (1.0f - g));
      if (dx) dx[i] = from_f32<D>((1.0f - g) * d);
      state = g * state + (1.0f - g) * xi;
    }
  }
}

struct DeviceFree {
  void operator()(void* p) const { device_free(p); }
};

}  // namespace

template <typename T>
void chunk_scan_forward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, T* h) {
  const int64_t segments = s.segments(), n = s.B * segments * s.C;
  if (n == 0) return;
  chunk_scan_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(s, segments, dev(x), dev(gate_logit),
                                                                                      dev(initial), dev(h), n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void chunk_scan_backward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, const T* dh, T* dx,
                         T* dgate_logit, T* dinitial) {
  if (dinitial) zero(dinitial, static_cast<size_t>(s.B * s.C) * sizeof(T));
  const int64_t segments = s.segments(), n = s.B * segments * s.C;
  if (n == 0 || (!dx && !dgate_logit && !(dinitial && s.continues()))) return;
  // Given back after the launch: the caching allocator reuses it only for work queued after it.
  const std::unique_ptr<void, DeviceFree> dtot(device_alloc(static_cast<size_t>(s.B * s.T * s.C) * sizeof(float)));
  chunk_scan_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(
      s, segments, dev(x), dev(gate_logit), dev(initial), dev(dh), dev(dx), dev(dgate_logit), dev(dinitial),
      static_cast<float*>(dtot.get()), n);
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                                                        \
  template void chunk_scan_forward<T>(const ChunkScanShape&, const T*, const T*, const T*, T*);                  \
  template void chunk_scan_backward<T>(const ChunkScanShape&, const T*, const T*, const T*, const T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
