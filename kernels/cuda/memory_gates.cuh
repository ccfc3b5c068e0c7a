#pragma once
// The gates of one chunk of Titans' memory ops on the device, the CUDA side of
// kernels/cpu/memory_gates.h (definitions there): log theta, lb = log(1 - alpha), le = log(eta),
// the segment products P, N, their product G = P N, beta, m and f = P m, all f32, built by one
// thread block in buffers it owns (shared memory or a global workspace), and the map of the gates'
// gradients back to the three logits. Every value is computed by one thread in a fixed order: no
// atomics, the same bits on every run. Matrices are row-major with row stride `cap` (the chunk
// length the buffers hold); a chunk of L <= cap rows uses their top-left L x L corner.
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda::memory_gates {

// log(1 + exp(x)) without overflow.
__device__ __forceinline__ float softplus_f32(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

// Carves n floats off a workspace cursor.
__device__ __forceinline__ float* carve(float*& cursor, long long n) {
  float* p = cursor;
  cursor += n;
  return p;
}

struct ChunkGates {
  float *log_theta, *lb, *le, *beta, *m, *f;  // [cap]
  float *P, *N, *G;                           // [cap, cap]
  static constexpr long long floats(long long cap) { return 6 * cap + 3 * cap * cap; }
  __device__ void carve_from(float*& c, int cap) {
    log_theta = carve(c, cap), lb = carve(c, cap), le = carve(c, cap), beta = carve(c, cap), m = carve(c, cap);
    f = carve(c, cap), P = carve(c, cap * cap), N = carve(c, cap * cap), G = carve(c, cap * cap);
  }
};

// The gates of L rows from logits read at logit[r * stride], log_max_lr = log(max_lr); every
// thread of the block calls it, and the buffers are complete when it returns.
template <typename D>
__device__ void build_gates(const ChunkGates& g, int L, int cap, const D* theta_logit, const D* eta_logit,
                            const D* alpha_logit, long long stride, float log_max_lr) {
  for (int r = threadIdx.x; r < L; r += blockDim.x) {
    g.log_theta[r] = log_max_lr - softplus_f32(-to_f32(theta_logit[r * stride]));
    g.le[r] = -softplus_f32(-to_f32(eta_logit[r * stride]));
    g.lb[r] = -softplus_f32(to_f32(alpha_logit[r * stride]));
  }
  __syncthreads();
  // Column c of P and N: segment sums from c + 1 down the rows, summed directly.
  for (int c = threadIdx.x; c < L; c += blockDim.x) {
    for (int r = 0; r < c; ++r) g.P[r * cap + c] = 0.f, g.N[r * cap + c] = 0.f;
    float sum_b = 0.f, sum_n = g.log_theta[c];
    g.P[c * cap + c] = 1.f;
    g.N[c * cap + c] = expf(sum_n);
    for (int r = c + 1; r < L; ++r) {
      sum_b += g.lb[r];
      sum_n += g.le[r];
      g.P[r * cap + c] = expf(sum_b);
      g.N[r * cap + c] = expf(sum_n);
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

// The gradients a memory's chunk backward leaves for the gates (dG: lower triangle, g's gradient
// folded into its last row; dn: of N's last row beyond G; dbeta, df; dm_last: of m_L, one float),
// and the map's own scratch (X, Y, dm).
struct GateGrads {
  float *dG, *X, *Y;             // [cap, cap]
  float *dn, *dbeta, *df, *dm;  // [cap]
  float* dm_last;               // [1]
  static constexpr long long floats(long long cap) { return 3 * cap * cap + 4 * cap + 1; }
  __device__ void carve_from(float*& c, int cap) {
    dG = carve(c, cap * cap), X = carve(c, cap * cap), Y = carve(c, cap * cap);
    dn = carve(c, cap), dbeta = carve(c, cap), df = carve(c, cap), dm = carve(c, cap), dm_last = carve(c, 1);
  }
};

// The logits' gradients (written at out[r * stride]; null: not wanted) from the gates' (filled and
// synchronised by the caller). Every thread of the block calls it; it ends synchronised.
template <typename D>
__device__ void gate_logit_grads(const ChunkGates& g, const GateGrads& gr, int L, int cap, const D* theta_logit,
                                 const D* eta_logit, const D* alpha_logit, long long stride, D* dtheta_logit,
                                 D* deta_logit, D* dalpha_logit) {
  // X = dP o P and Y = dN o N on the lower triangles, with dP = dG N^T + df m^T and dN = P^T dG
  // (+ dn on the last row); dm = P^T df (+ dm_last at the end).
  for (int idx = threadIdx.x; idx < L * L; idx += blockDim.x) {
    const int i = idx / L, k = idx % L;
    float x = 0.f, y = 0.f;
    if (k <= i) {
      float dp = gr.df[i] * g.m[k];
      for (int j = 0; j <= k; ++j) dp += gr.dG[i * cap + j] * g.N[k * cap + j];
      x = dp * g.P[i * cap + k];
      // dN[i, k] (row i >= column k): sum over rows r >= i of P[r, i] dG[r, k].
      float dn = i == L - 1 ? gr.dn[k] : 0.f;
      for (int r = i; r < L; ++r) dn += g.P[r * cap + i] * gr.dG[r * cap + k];
      y = dn * g.N[i * cap + k];
    }
    gr.X[i * cap + k] = x;
    gr.Y[i * cap + k] = y;
  }
  for (int k = threadIdx.x; k < L; k += blockDim.x) {
    float dm = k == L - 1 ? gr.dm_last[0] : 0.f;
    for (int i = k; i < L; ++i) dm += g.P[i * cap + k] * gr.df[i];
    gr.dm[k] = dm;
  }
  __syncthreads();
  // lb_l is in the exponent of P[i, k] for k < l <= i and of beta_i for i >= l; le_l likewise in N
  // and m; log theta_j in column j of N.
  for (int l = threadIdx.x; l < L; l += blockDim.x) {
    float dlb = 0.f, dle = 0.f, dlt = 0.f;
    for (int i = l; i < L; ++i) {
      dlb += gr.dbeta[i] * g.beta[i];
      dle += gr.dm[i] * g.m[i];
      for (int k = 0; k < l; ++k) {
        dlb += gr.X[i * cap + k];
        dle += gr.Y[i * cap + k];
      }
      dlt += gr.Y[i * cap + l];
    }
    // d log theta / dx_theta = sigmoid(-x_theta); d le / dx_eta = sigmoid(-x_eta); d lb / dx_alpha = -sigmoid(x_alpha).
    if (dtheta_logit) dtheta_logit[l * stride] = from_f32<D>(dlt * sigmoid_f32(-to_f32(theta_logit[l * stride])));
    if (deta_logit) deta_logit[l * stride] = from_f32<D>(dle * sigmoid_f32(-to_f32(eta_logit[l * stride])));
    if (dalpha_logit) dalpha_logit[l * stride] = from_f32<D>(-dlb * sigmoid_f32(to_f32(alpha_logit[l * stride])));
  }
  __syncthreads();
}

}  // namespace eat::cuda::memory_gates
