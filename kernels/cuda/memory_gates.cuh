#pragma once
// The gates of one chunk of Titans' memory ops on the device, the CUDA side of
// kernels/cpu/memory_gates.h (definitions there): theta, lb = log(1 - alpha), le = log(eta), the
// segment products P, N, their product G = P N, beta, m and f = P m, all f32, built by one thread
// block in buffers it owns (shared memory or a global workspace), and the map of the gates'
// gradients back to the three logits. Every value is computed by one thread in a fixed order: no
// atomics, the same bits on every run. Matrices are row-major with row stride `cap` (the chunk
// length the buffers hold); a chunk of L <= cap rows uses their top-left L x L corner.
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda::memory_gates {

__device__ __forceinline__ float softplus_f32(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

// Carves n floats off a workspace cursor.
__device__ __forceinline__ float* carve(float*& cursor, long long n) {
  float* p = cursor;
  cursor += n;
  return p;
}

struct ChunkGates {
  float *theta, *lb, *le, *beta, *m, *f;  // [cap]
  float *P, *N, *G;                       // [cap, cap]
  static constexpr long long floats(long long cap) { return 6 * cap + 3 * cap * cap; }
  __device__ void carve_from(float*& c, int cap) {
    theta = carve(c, cap), lb = carve(c, cap), le = carve(c, cap), beta = carve(c, cap), m = carve(c, cap);
    f = carve(c, cap), P = carve(c, cap * cap), N = carve(c, cap * cap), G = carve(c, cap * cap);
  }
};

// The gates of L rows from logits read at logit[r * stride]; every thread of the block calls it,
// and the buffers are complete when it returns.
template <typename D>
__device__ void build_gates(const ChunkGates& g, int L, int cap, const D* theta_logit, const D* eta_logit,
                            const D* alpha_logit, long long stride, float max_lr) {
  for (int r = threadIdx.x; r < L; r += blockDim.x) {
    g.theta[r] = max_lr * sigmoid_f32(to_f32(theta_logit[r * stride]));
    g.lb[r] = -softplus_f32(to_f32(alpha_logit[r * stride]));
    g.le[r] = -softplus_f32(-to_f32(eta_logit[r * stride]));
  }
  __syncthreads();
  // Column c of P and N: segment sums from c + 1 down the rows, summed directly.
  for (int c = threadIdx.x; c < L; c += blockDim.x) {
    for (int r = 0; r < c; ++r) g.P[r * cap + c] = 0.f, g.N[r * cap + c] = 0.f;
    g.P[c * cap + c] = 1.f;
    g.N[c * cap + c] = g.theta[c];
    float sum_b = 0.f, sum_e = 0.f;
    for (int r = c + 1; r < L; ++r) {
      sum_b += g.lb[r];
      sum_e += g.le[r];
      g.P[r * cap + c] = expf(sum_b);
      g.N[r * cap + c] = g.theta[c] * expf(sum_e);
    }
    float pre_b = 0.f, pre_e = 0.f;  // row c's prefix sums: beta_c and m_c
    for (int l = 0; l <= c; ++l) pre_b += g.lb[l], pre_e += g.le[l];
    g.beta[c] = expf(pre_b);
    g.m[c] = expf(pre_e);
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < L * L; idx += blockDim.x) {
    const int i = idx / L, j = idx % L;
    float acc = 0.f;
    for (int k = j; k <= i; ++k) acc += g.P[i * cap + k] * g.N[k * cap + j];
    g.G[i * cap + j] = acc;  // 0 above the diagonal (an empty sum)
  }
  for (int i = threadIdx.x; i < L; i += blockDim.x) {
    float acc = 0.f;
    for (int k = 0; k <= i; ++k) acc += g.P[i * cap + k] * g.m[k];
    g.f[i] = acc;
  }
  __syncthreads();
}

// The gradients a memory's chunk backward leaves for the gates (dG: lower triangle; dn: of N's last
// row beyond G; dbeta, df; dm_last: of m_L, one float), and the map's own scratch.
struct GateGrads {
  float *dG, *dP, *dN;                           // [cap, cap]
  float *dn, *dbeta, *df, *dm, *dcb, *dce, *dth;  // [cap]
  float* dm_last;                                // [1]
  static constexpr long long floats(long long cap) { return 3 * cap * cap + 7 * cap + 1; }
  __device__ void carve_from(float*& c, int cap) {
    dG = carve(c, cap * cap), dP = carve(c, cap * cap), dN = carve(c, cap * cap);
    dn = carve(c, cap), dbeta = carve(c, cap), df = carve(c, cap), dm = carve(c, cap), dcb = carve(c, cap);
    dce = carve(c, cap), dth = carve(c, cap), dm_last = carve(c, 1);
  }
};

// The logits' gradients (written at out[r * stride]; null: not wanted) from the gates' (filled and
// synchronised by the caller). Every thread of the block calls it; it ends synchronised.
template <typename D>
__device__ void gate_logit_grads(const ChunkGates& g, const GateGrads& gr, int L, int cap, const D* theta_logit,
                                 const D* eta_logit, const D* alpha_logit, long long stride, D* dtheta_logit,
                                 D* deta_logit, D* dalpha_logit) {
  // dP = tril(dG N^T + df m^T), dN = tril(P^T dG) (+ dn on the last row), dm = P^T df (+ dm_last).
  for (int idx = threadIdx.x; idx < L * L; idx += blockDim.x) {
    const int i = idx / L, k = idx % L;
    if (k > i) continue;
    float dp = gr.df[i] * g.m[k];
    for (int j = 0; j <= k; ++j) dp += gr.dG[i * cap + j] * g.N[k * cap + j];
    gr.dP[i * cap + k] = dp;
    // dN[a, c] for a = i, c = k (a >= c).
    float dn = i == L - 1 ? gr.dn[k] : 0.f;
    for (int r = i; r < L; ++r) dn += g.P[r * cap + i] * gr.dG[r * cap + k];
    gr.dN[i * cap + k] = dn;
  }
  for (int k = threadIdx.x; k < L; k += blockDim.x) {
    float dm = k == L - 1 ? gr.dm_last[0] : 0.f;
    for (int i = k; i < L; ++i) dm += g.P[i * cap + k] * gr.df[i];
    gr.dm[k] = dm;
  }
  __syncthreads();
  // The gradients of the prefix sums of lb and le (P[i,k] = exp(c_i - c_k)), and of theta (times theta).
  for (int r = threadIdx.x; r < L; r += blockDim.x) {
    float cb = gr.dbeta[r] * g.beta[r], ce = gr.dm[r] * g.m[r], th = gr.dN[r * cap + r] * g.N[r * cap + r];
    for (int c = 0; c < r; ++c) cb += gr.dP[r * cap + c] * g.P[r * cap + c], ce += gr.dN[r * cap + c] * g.N[r * cap + c];
    for (int i = r + 1; i < L; ++i) {
      cb -= gr.dP[i * cap + r] * g.P[i * cap + r];
      const float wn = gr.dN[i * cap + r] * g.N[i * cap + r];
      ce -= wn;
      th += wn;
    }
    gr.dcb[r] = cb, gr.dce[r] = ce, gr.dth[r] = th;
  }
  __syncthreads();
  // lb_l enters every prefix sum from l on: its gradient is the reverse prefix sum.
  for (int r = threadIdx.x; r < L; r += blockDim.x) {
    float rev_b = 0.f, rev_e = 0.f;
    for (int l = L - 1; l >= r; --l) rev_b += gr.dcb[l], rev_e += gr.dce[l];
    if (dalpha_logit) dalpha_logit[r * stride] = from_f32<D>(-rev_b * sigmoid_f32(to_f32(alpha_logit[r * stride])));
    if (deta_logit) deta_logit[r * stride] = from_f32<D>(rev_e * sigmoid_f32(-to_f32(eta_logit[r * stride])));
    if (dtheta_logit)
      dtheta_logit[r * stride] = from_f32<D>(gr.dth[r] * sigmoid_f32(-to_f32(theta_logit[r * stride])));
  }
  __syncthreads();
}

}  // namespace eat::cuda::memory_gates
