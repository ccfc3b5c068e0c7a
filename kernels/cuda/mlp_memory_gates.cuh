#pragma once
// The gates of one chunk of Titans' memory update on the GPU (the arithmetic of
// kernels/cpu/mlp_memory_gates.h, in f32): one thread block per (batch, head), every product of
// gates the exp of a direct segment sum of logs (<= 0), phases separated by __syncthreads (the
// block's own global-memory writes are visible to it after one). Layouts: per-token vectors
// [BH, L], L x L matrices [BH, L, L] (lower triangles, zeros above). Every sum runs in a fixed order
// in one thread: deterministic.
#include <cstdint>

#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda::mlp_memory_detail {

__device__ __forceinline__ float softplus_f32(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

// The gate logits of one chunk: token t0 + l of head (b, h) in [B, T, H] tensors.
template <typename D>
struct ChunkLogits {
  const D *theta, *eta, *alpha;
  int64_t T, H, t0;
  __device__ int64_t at(int64_t bh, int64_t l) const { return ((bh / H) * T + t0 + l) * H + bh % H; }
};

// Per (batch, head) of the chunk: log theta, le = log eta, lb = log(1 - alpha), beta, m [BH, L];
// P, N, G = P N [BH, L, L]; f = P m, g = G[L-1, :], n = N[L-1, :] [BH, L].
struct GateBuffers {
  float *log_theta, *le, *lb, *beta, *m, *f, *g, *n, *P, *N, *G;
};

template <typename D>
__global__ void gates_forward_kernel(ChunkLogits<D> logits, int64_t L, float log_max_lr, GateBuffers o) {
  const int64_t bh = blockIdx.x, v0 = bh * L, m0 = bh * L * L;
  for (int64_t l = threadIdx.x; l < L; l += blockDim.x) {
    const int64_t i = logits.at(bh, l);
    o.log_theta[v0 + l] = log_max_lr - softplus_f32(-to_f32(logits.theta[i]));
    o.le[v0 + l] = -softplus_f32(-to_f32(logits.eta[i]));
    o.lb[v0 + l] = -softplus_f32(to_f32(logits.alpha[i]));
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < L; i += blockDim.x) {
    float sb = 0.0f, sm = 0.0f;
    for (int64_t l = 0; l <= i; ++l) {
      sb += o.lb[v0 + l];
      sm += o.le[v0 + l];
    }
    o.beta[v0 + i] = expf(sb);
    o.m[v0 + i] = expf(sm);
  }
  for (int64_t e = threadIdx.x; e < L * L; e += blockDim.x) {
    const int64_t i = e / L, k = e % L;
    float p = 0.0f, nn = 0.0f;
    if (k <= i) {
      float sp = 0.0f, sn = o.log_theta[v0 + k];
      for (int64_t l = k + 1; l <= i; ++l) {
        sp += o.lb[v0 + l];
        sn += o.le[v0 + l];
      }
      p = expf(sp);
      nn = expf(sn);
    }
    o.P[m0 + e] = p;
    o.N[m0 + e] = nn;
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < L * L; e += blockDim.x) {
    const int64_t i = e / L, j = e % L;
    float s = 0.0f;
    for (int64_t k = j; k <= i; ++k) s += o.P[m0 + i * L + k] * o.N[m0 + k * L + j];
    o.G[m0 + e] = s;
  }
  for (int64_t i = threadIdx.x; i < L; i += blockDim.x) {
    float s = 0.0f;
    for (int64_t k = 0; k <= i; ++k) s += o.P[m0 + i * L + k] * o.m[v0 + k];
    o.f[v0 + i] = s;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
    o.g[v0 + j] = o.G[m0 + (L - 1) * L + j];
    o.n[v0 + j] = o.N[m0 + (L - 1) * L + j];
  }
}

// The gradients of the gates, [BH, L] or [BH, L, L] like GateBuffers: dG (of G = P N; g's gradient
// dg is added to its last row here), dn (of n, N's last row), dbeta, df, and dm_last [BH] (of m at
// the chunk's end). X, Y and dm are scratch. Writes the logits' gradients (each may be null).
struct GateGrads {
  float *dG, *dg, *dn, *dbeta, *df, *dm_last, *X, *Y, *dm;
};

template <typename D>
__global__ void gates_backward_kernel(ChunkLogits<D> logits, int64_t L, GateBuffers c, GateGrads d, D* dtheta,
                                      D* deta, D* dalpha) {
  const int64_t bh = blockIdx.x, v0 = bh * L, m0 = bh * L * L;
  for (int64_t j = threadIdx.x; j < L; j += blockDim.x) d.dG[m0 + (L - 1) * L + j] += d.dg[v0 + j];
  __syncthreads();
  // X = dP o P and Y = dN o N on the lower triangles, with dP = (dG N^T + df m^T) and dN = P^T dG
  // (+ dn on the last row); dm = P^T df (+ dm_last at the end).
  for (int64_t e = threadIdx.x; e < L * L; e += blockDim.x) {
    const int64_t i = e / L, k = e % L;
    float x = 0.0f, y = 0.0f;
    if (k <= i) {
      float dp = d.df[v0 + i] * c.m[v0 + k];
      for (int64_t j = 0; j <= k; ++j) dp += d.dG[m0 + i * L + j] * c.N[m0 + k * L + j];
      x = dp * c.P[m0 + e];
      // dN[i, k] (row i >= column k): sum over rows r >= i of P[r, i] dG[r, k].
      float dn = i == L - 1 ? d.dn[v0 + k] : 0.0f;
      for (int64_t r = i; r < L; ++r) dn += c.P[m0 + r * L + i] * d.dG[m0 + r * L + k];
      y = dn * c.N[m0 + e];
    }
    d.X[m0 + e] = x;
    d.Y[m0 + e] = y;
  }
  for (int64_t k = threadIdx.x; k < L; k += blockDim.x) {
    float s = k == L - 1 ? d.dm_last[bh] : 0.0f;
    for (int64_t i = k; i < L; ++i) s += c.P[m0 + i * L + k] * d.df[v0 + i];
    d.dm[v0 + k] = s;
  }
  __syncthreads();
  // lb_l is in the exponent of P[i, k] for k < l <= i and of beta_i for i >= l; le_l likewise in N
  // and m; log theta_j in column j of N.
  for (int64_t l = threadIdx.x; l < L; l += blockDim.x) {
    float dlb = 0.0f, dle = 0.0f, dlt = 0.0f;
    for (int64_t i = l; i < L; ++i) {
      dlb += d.dbeta[v0 + i] * c.beta[v0 + i];
      dle += d.dm[v0 + i] * c.m[v0 + i];
      for (int64_t k = 0; k < l; ++k) {
        dlb += d.X[m0 + i * L + k];
        dle += d.Y[m0 + i * L + k];
      }
      dlt += d.Y[m0 + i * L + l];
    }
    const int64_t at = logits.at(bh, l);
    // d log theta / da = sigmoid(-a); d le / dc = sigmoid(-c); d lb / dx = -sigmoid(x).
    if (dtheta) dtheta[at] = from_f32<D>(dlt * sigmoid_f32(-to_f32(logits.theta[at])));
    if (deta) deta[at] = from_f32<D>(dle * sigmoid_f32(-to_f32(logits.eta[at])));
    if (dalpha) dalpha[at] = from_f32<D>(-dlb * sigmoid_f32(to_f32(logits.alpha[at])));
  }
}

}  // namespace eat::cuda::mlp_memory_detail
