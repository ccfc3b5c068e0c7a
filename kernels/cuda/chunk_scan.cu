// The chunk-reset gated scan on the device: one thread per (batch, segment, channel) walks its
// segment's tokens in order, in f32 whatever the storage. Neighbouring threads are neighbouring
// channels of one token row, so every load and store is coalesced; a segment is at most one
// chunk long, so training (chunk 16) has B * T / 16 * C threads.
// The backward walks each segment twice: backwards for dtot_t = dh_t + g_{t+1} dtot_{t+1}, held
// in registers for segments of up to 16 tokens (RAT's training chunk) and in f32 scratch beyond,
// then forwards, recomputing h in f32 for dgate_logit_t = dtot_t (h_{t-1} - x_t) g_t (1 - g_t)
// and dx_t = (1 - g_t) dtot_t. No thread reads another's values: no
// synchronisation, no atomics, the same bits on every run.
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

// kHeld > 0: segments of at most kHeld tokens, dtot held in registers (the loops unroll, so every
// index is a constant); kHeld = 0: any length, dtot in the f32 scratch [B, T, C]. dinitial, when
// wanted, is already zero.
template <typename D, int kHeld>
__global__ void chunk_scan_backward_kernel(ChunkScanShape s, int64_t segments, const D* x, const D* gate_logit,
                                           const D* initial, const D* dh, D* dx, D* dgate_logit, D* dinitial,
                                           float* scratch, int64_t n) {
  EAT_GRID_STRIDE(e, n) {
    const Lane l = lane_of(s, segments, e);
    const int64_t t0 = s.begin(l.segment), len = s.end(l.segment) - t0;
    const int64_t base = (l.b * s.T + t0) * s.C + l.c;  // element (b, t0, c)
    float held[kHeld > 0 ? kHeld : 1];
    float carry = 0.0f;  // g_{t+1} dtot_{t+1}
#pragma unroll
    for (int64_t j = (kHeld > 0 ? kHeld : len) - 1; j >= 0; --j) {
      if (j >= len) continue;
      const int64_t i = base + j * s.C;
      const float d = to_f32(dh[i]) + carry;
      if constexpr (kHeld > 0) held[j] = d;
      else scratch[i] = d;
      carry = sigmoid_f32(to_f32(gate_logit[i])) * d;
    }
    if (l.segment == 0 && s.continues() && dinitial) dinitial[l.b * s.C + l.c] = from_f32<D>(carry);
    if (!dx && !dgate_logit) continue;
    float state = state_before(s, initial, l);  // h_{t-1}
#pragma unroll
    for (int64_t j = 0; j < (kHeld > 0 ? kHeld : len); ++j) {
      if (j >= len) continue;
      const int64_t i = base + j * s.C;
      const float xi = to_f32(x[i]), g = sigmoid_f32(to_f32(gate_logit[i]));
      float d;
      if constexpr (kHeld > 0) d = held[j];
      else d = scratch[i];
      if (dgate_logit) dgate_logit[i] = from_f32<D>(d * (state - xi) * g * (1.0f - g));
      if (dx) dx[i] = from_f32<D>((1.0f - g) * d);
      state = g * state + (1.0f - g) * xi;
    }
  }
}

template <int kHeld, typename T>
void launch_backward(const ChunkScanShape& s, int64_t segments, const T* x, const T* gate_logit, const T* initial,
                     const T* dh, T* dx, T* dgate_logit, T* dinitial, float* scratch, int64_t n) {
  chunk_scan_backward_kernel<device_t<T>, kHeld><<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(
      s, segments, dev(x), dev(gate_logit), dev(initial), dev(dh), dev(dx), dev(dgate_logit), dev(dinitial), scratch,
      n);
  EAT_CUDA_CHECK_LAUNCH();
}

struct DeviceFree {
  void operator()(void* p) const { device_free(p); }
};

}  // namespace

template <typename T>
void chunk_scan_forward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, T* h) {
  const int64_t segments = s.segments(), n = s.B * segments * s.C;
  if (n == 0) return;
  chunk_scan_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(
      s, segments, dev(x), dev(gate_logit), dev(initial), dev(h), n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void chunk_scan_backward(const ChunkScanShape& s, const T* x, const T* gate_logit, const T* initial, const T* dh, T* dx,
                         T* dgate_logit, T* dinitial) {
  if (dinitial) zero(dinitial, static_cast<size_t>(s.B * s.C) * sizeof(T));
  const int64_t segments = s.segments(), n = s.B * segments * s.C;
  if (n == 0 || (!dx && !dgate_logit && !(dinitial && s.continues()))) return;
  const int64_t longest = s.chunk < s.T ? s.chunk : s.T;  // no segment is longer
  // 16 values fit in registers (about 100 registers a thread in all); 64 would spill.
  if (longest <= 16) {
    launch_backward<16>(s, segments, x, gate_logit, initial, dh, dx, dgate_logit, dinitial, nullptr, n);
  } else {
    // Given back after the launch: the caching allocator reuses it only for work queued after it.
    const std::unique_ptr<void, DeviceFree> scratch(device_alloc(static_cast<size_t>(s.B * s.T * s.C) * sizeof(float)));
    launch_backward<0>(s, segments, x, gate_logit, initial, dh, dx, dgate_logit, dinitial,
                       static_cast<float*>(scratch.get()), n);
  }
}

#define EAT_INSTANTIATE(T)                                                                                        \
  template void chunk_scan_forward<T>(const ChunkScanShape&, const T*, const T*, const T*, T*);                  \
  template void chunk_scan_backward<T>(const ChunkScanShape&, const T*, const T*, const T*, const T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
