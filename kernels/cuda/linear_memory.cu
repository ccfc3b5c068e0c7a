// Titans' linear memory on the device (kernels/linear_memory.h; the formulas are the CPU kernel's,
// kernels/cpu/linear_memory.cpp). One thread block per (batch, head) walks its chunks in time
// order (forward) or in reverse (backward). The block's f32 workspace holds the states (W, S and,
// backwards, dW, dS), the chunk's rows of q, k, the error E = K W0 - V and the gates' L x L
// matrices (kernels/cuda/memory_gates.cuh); it lives in shared memory when smem_budget() allows
// (d = e = 64 at chunk 16: 49 KiB forward, 110 KiB backward) and in a global scratch slice per
// block otherwise. Every value is computed by one thread in a fixed order (each product a plain
// loop), so there are no atomics and every run gives the same bits; a shared initial state's
// gradient is written per sequence and summed over the batch, in batch order, by a second kernel
// (kernels/cuda/column_sums.h).
// The backward recomputes the chunk-start states between two kept ones into a global scratch
// [B * H, every, 2, d, e] before walking those chunks in reverse.
#include <cmath>
#include <memory>

#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/memory_gates.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/cuda/smem_budget.h"
#include "kernels/linear_memory.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

constexpr const char* kOp = "linear_memory";
constexpr int kThreads = 256;

using memory_gates::carve;
using memory_gates::ChunkGates;
using memory_gates::GateGrads;

template <typename D>
struct Args {
  long long T;
  int H, d, e, cap, every, checkpoints;  // cap: the chunk length (the last chunk may be shorter)
  // Row strides in the workspace: lq of the [cap, d] rows of q and k, le of every [., e] buffer
  // (states included). Odd, so that a warp reading one column of a buffer (a thread per row)
  // hits 32 different banks.
  int lq, le;
  float log_max_lr;  // log(max_lr)
  bool w0_shared, s0_shared;
  const D *q, *k, *v, *theta_logit, *eta_logit, *alpha_logit;
  float* workspace;  // null: dynamic shared memory
  long long workspace_floats;
  // Forward.
  const float *w0, *s0;
  D* y;
  float *w_final, *s_final, *kept;
  // Backward.
  const D* dy;
  const float *dw_final, *ds_final;
  D *dq, *dk, *dv, *dtheta_logit, *deta_logit, *dalpha_logit;
  float *dw0, *ds0;  // per (batch, head) when the initial state is shared, summed afterwards
  float* states;     // [B * H, every, 2, d, e]

  __host__ __device__ long long de() const { return static_cast<long long>(d) * e; }
  __device__ long long chunks() const { return (T + cap - 1) / cap; }
  // Row t of head bh in a [B, T, H, width] tensor, and of a [B, T, H] logit tensor.
  __device__ long long row(long long bh, long long t, int width) const {
    return ((bh / H * T + t) * H + bh % H) * width;
  }
};

extern __shared__ float smem[];

__device__ __forceinline__ float* block_workspace(float* workspace, long long floats) {
  return workspace ? workspace + blockIdx.x * floats : smem;
}

// One chunk's rows and gates; L rows of at most cap.
struct Chunk {
  int L;
  long long t0;
  float *Q, *K, *E;  // [cap, d], [cap, d], [cap, e] (E holds V until it is formed)
  float* A;          // [cap, cap]
  ChunkGates gates;
};

struct ForwardWs {
  float *W, *S;
  Chunk c;
  static long long floats(int d, int lq, int le, int cap) {
    return 2ll * d * le + 2ll * cap * lq + 1ll * cap * le + 1ll * cap * cap + ChunkGates::floats(cap);
  }
  __device__ ForwardWs(float* p, int d, int lq, int le, int cap) {
    W = carve(p, 1ll * d * le), S = carve(p, 1ll * d * le);
    c.Q = carve(p, 1ll * cap * lq), c.K = carve(p, 1ll * cap * lq), c.E = carve(p, 1ll * cap * le);
    c.A = carve(p, 1ll * cap * cap);
    c.gates.carve_from(p, cap);
  }
};

// Loads chunk j's q, k, v rows (f32) and builds its gates; ends synchronised.
template <typename D>
__device__ void load_chunk(const Args<D>& a, long long bh, long long j, Chunk& c) {
  c.t0 = j * a.cap;
  c.L = static_cast<int>(min(static_cast<long long>(a.cap), a.T - c.t0));
  for (int idx = threadIdx.x; idx < c.L * a.d; idx += blockDim.x) {
    const int r = idx / a.d, x = idx % a.d;
    c.Q[r * a.lq + x] = to_f32(a.q[a.row(bh, c.t0 + r, a.d) + x]);
    c.K[r * a.lq + x] = to_f32(a.k[a.row(bh, c.t0 + r, a.d) + x]);
  }
  for (int idx = threadIdx.x; idx < c.L * a.e; idx += blockDim.x) {
    const int r = idx / a.e, x = idx % a.e;
    c.E[r * a.le + x] = to_f32(a.v[a.row(bh, c.t0 + r, a.e) + x]);
  }
  const long long lo = a.row(bh, c.t0, 1);
  memory_gates::build_gates(c.gates, c.L, a.cap, a.theta_logit + lo, a.eta_logit + lo, a.alpha_logit + lo, a.H,
                            a.log_max_lr);  // synchronises
}

// E = K W - V in place (each element reads only its own V); ends synchronised.
__device__ void form_error(const Chunk& c, const float* W, int d, int e, int lq, int le) {
  for (int idx = threadIdx.x; idx < c.L * e; idx += blockDim.x) {
    const int j = idx / e, x = idx % e;
    float acc = -c.E[j * le + x];
    for (int r = 0; r < d; ++r) acc += c.K[j * lq + r] * W[r * le + x];
    c.E[j * le + x] = acc;
  }
  __syncthreads();
}

// The chunk's outputs from its start state (W, S) (E formed), then W, S replaced by its end state:
//     W <- beta_L W + f_L S - 2 K^T diag(g) E,   S <- m_L S - 2 K^T diag(n) E.
// Ends synchronised.
template <typename D>
__device__ void chunk_forward(const Args<D>& a, long long bh, const Chunk& c, float* W, float* S, bool outputs) {
  const int L = c.L, d = a.d, e = a.e, cap = a.cap, lq = a.lq, le = a.le;
  const ChunkGates& g = c.gates;
  if (outputs) {
    for (int idx = threadIdx.x; idx < L * L; idx += blockDim.x) {
      const int i = idx / L, j = idx % L;
      float dot = 0.f;
      if (j <= i)
        for (int r = 0; r < d; ++r) dot += c.Q[i * lq + r] * c.K[j * lq + r];
      c.A[i * cap + j] = g.G[i * cap + j] * dot;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < L * e; idx += blockDim.x) {
      const int i = idx / e, x = idx % e;
      float qw = 0.f, qs = 0.f, ae = 0.f;
      for (int r = 0; r < d; ++r) qw += c.Q[i * lq + r] * W[r * le + x], qs += c.Q[i * lq + r] * S[r * le + x];
      for (int j = 0; j <= i; ++j) ae += c.A[i * cap + j] * c.E[j * le + x];
      a.y[a.row(bh, c.t0 + i, e) + x] = from_f32<D>(g.beta[i] * qw + g.f[i] * qs - 2.f * ae);
    }
    __syncthreads();
  }
  const float* gl = g.G + (L - 1) * cap;  // g: G's last row
  const float* nl = g.N + (L - 1) * cap;  // n: N's last row
  for (int idx = threadIdx.x; idx < d * e; idx += blockDim.x) {
    const int r = idx / e, x = idx % e;
    float ag = 0.f, an = 0.f;
    for (int j = 0; j < L; ++j) {
      const float ke = c.K[j * lq + r] * c.E[j * le + x];
      ag += gl[j] * ke, an += nl[j] * ke;
    }
    const float w = W[r * le + x], s = S[r * le + x];
    W[r * le + x] = g.beta[L - 1] * w + g.f[L - 1] * s - 2.f * ag;
    S[r * le + x] = g.m[L - 1] * s - 2.f * an;
  }
  __syncthreads();
}

// A d x e state from global memory (contiguous; null: zero) into the workspace (row stride le),
// and back; every thread moves the same elements both ways.
__device__ __forceinline__ void load_state(float* ws, const float* global, int d, int e, int le) {
  for (int idx = threadIdx.x; idx < d * e; idx += blockDim.x)
    ws[idx / e * le + idx % e] = global ? global[idx] : 0.f;
}
__device__ __forceinline__ void store_state(float* global, const float* ws, int d, int e, int le) {
  for (int idx = threadIdx.x; idx < d * e; idx += blockDim.x) global[idx] = ws[idx / e * le + idx % e];
}

template <typename D>
__global__ void __launch_bounds__(kThreads) forward_kernel(Args<D> a) {
  const long long bh = blockIdx.x, n = a.de();
  const int d = a.d, e = a.e, le = a.le;
  ForwardWs ws(block_workspace(a.workspace, a.workspace_floats), d, a.lq, le, a.cap);
  const long long h = bh % a.H;
  load_state(ws.W, a.w0 ? a.w0 + (a.w0_shared ? h : bh) * n : nullptr, d, e, le);
  load_state(ws.S, a.s0 ? a.s0 + (a.s0_shared ? h : bh) * n : nullptr, d, e, le);
  __syncthreads();
  float* kept = a.kept + bh * a.checkpoints * 2 * n;
  const long long chunks = a.chunks();
  store_state(kept, ws.W, d, e, le);  // chunk 0's start (also for an empty sequence)
  store_state(kept + n, ws.S, d, e, le);
  for (long long j = 0; j < chunks; ++j) {
    if (j > 0 && j % a.every == 0) {
      store_state(kept + (j / a.every) * 2 * n, ws.W, d, e, le);
      store_state(kept + (j / a.every) * 2 * n + n, ws.S, d, e, le);
    }
    load_chunk(a, bh, j, ws.c);
    form_error(ws.c, ws.W, d, e, a.lq, le);
    chunk_forward(a, bh, ws.c, ws.W, ws.S, true);
  }
  store_state(a.w_final + bh * n, ws.W, d, e, le);
  store_state(a.s_final + bh * n, ws.S, d, e, le);
}

struct BackwardWs {
  float *W, *S, *dW, *dS;
  Chunk c;
  float *dO, *dE, *KdW, *KdS, *QW, *QS;  // [cap, e]
  float* DOE;                            // tril(dO E^T) [cap, cap]
  GateGrads grads;
  static long long floats(int d, int lq, int le, int cap) {
    return 4ll * d * le + 2ll * cap * lq + 7ll * cap * le + 2ll * cap * cap + ChunkGates::floats(cap) +
           GateGrads::floats(cap);
  }
  __device__ BackwardWs(float* p, int d, int lq, int le, int cap) {
    W = carve(p, 1ll * d * le), S = carve(p, 1ll * d * le), dW = carve(p, 1ll * d * le), dS = carve(p, 1ll * d * le);
    c.Q = carve(p, 1ll * cap * lq), c.K = carve(p, 1ll * cap * lq), c.E = carve(p, 1ll * cap * le);
    c.A = carve(p, 1ll * cap * cap);
    c.gates.carve_from(p, cap);
    dO = carve(p, 1ll * cap * le), dE = carve(p, 1ll * cap * le), KdW = carve(p, 1ll * cap * le);
    KdS = carve(p, 1ll * cap * le), QW = carve(p, 1ll * cap * le), QS = carve(p, 1ll * cap * le);
    DOE = carve(p, 1ll * cap * cap);
    grads.carve_from(p, cap);
  }
};

// One chunk backward (loaded, E formed, its start state in W, S): the input gradients of its rows,
// and dW, dS replaced by the gradients of its start state. Ends synchronised.
template <typename D>
__device__ void chunk_backward(const Args<D>& a, long long bh, BackwardWs& ws) {
  const Chunk& c = ws.c;
  const ChunkGates& g = c.gates;
  const GateGrads& gr = ws.grads;
  const int L = c.L, d = a.d, e = a.e, cap = a.cap, lq = a.lq, le = a.le;
  const float *W = ws.W, *S = ws.S, *gl = g.G + (L - 1) * cap, *nl = g.N + (L - 1) * cap;
  for (int idx = threadIdx.x; idx < L * e; idx += blockDim.x)
    ws.dO[idx / e * le + idx % e] = to_f32(a.dy[a.row(bh, c.t0 + idx / e, e) + idx % e]);
  __syncthreads();
  // A = tril(Q K^T), DOE = tril(dO E^T), K dW, K dS, Q W, Q S; <dW, W>, <dW, S>, <dS, S>.
  for (int idx = threadIdx.x; idx < L * L; idx += blockDim.x) {
    const int i = idx / L, j = idx % L;
    float qk = 0.f, oe = 0.f;
    if (j <= i) {
      for (int r = 0; r < d; ++r) qk += c.Q[i * lq + r] * c.K[j * lq + r];
      for (int x = 0; x < e; ++x) oe += ws.dO[i * le + x] * c.E[j * le + x];
    }
    c.A[i * cap + j] = qk;
    ws.DOE[i * cap + j] = oe;
  }
  for (int idx = threadIdx.x; idx < L * e; idx += blockDim.x) {
    const int i = idx / e, x = idx % e;
    float kdw = 0.f, kds = 0.f, qw = 0.f, qs = 0.f;
    for (int r = 0; r < d; ++r) {
      const float kr = c.K[i * lq + r], qr = c.Q[i * lq + r];
      kdw += kr * ws.dW[r * le + x], kds += kr * ws.dS[r * le + x];
      qw += qr * W[r * le + x], qs += qr * S[r * le + x];
    }
    const int o = i * le + x;
    ws.KdW[o] = kdw, ws.KdS[o] = kds, ws.QW[o] = qw, ws.QS[o] = qs;
  }
  float pw = 0.f, ps = 0.f, pss = 0.f;
  for (int idx = threadIdx.x; idx < d * e; idx += blockDim.x) {
    const int o = idx / e * le + idx % e;
    pw += ws.dW[o] * W[o], ps += ws.dW[o] * S[o], pss += ws.dS[o] * S[o];
  }
  const float dw_w = block_reduce(pw, SumOp{}), dw_s = block_reduce(ps, SumOp{}), ds_s = block_reduce(pss, SumOp{});
  __syncthreads();
  // dE, and the gates' gradients.
  for (int idx = threadIdx.x; idx < L * e; idx += blockDim.x) {
    const int j = idx / e, x = idx % e;
    float acc = 0.f;
    for (int i = j; i < L; ++i) acc += g.G[i * cap + j] * c.A[i * cap + j] * ws.dO[i * le + x];
    const int o = j * le + x;
    ws.dE[o] = -2.f * acc - 2.f * gl[j] * ws.KdW[o] - 2.f * nl[j] * ws.KdS[o];
  }
  for (int idx = threadIdx.x; idx < L * L; idx += blockDim.x) {
    const int i = idx / L, j = idx % L;
    float dg = -2.f * c.A[i * cap + j] * ws.DOE[i * cap + j];
    if (i == L - 1) {
      float kdw_e = 0.f;
      for (int x = 0; x < e; ++x) kdw_e += ws.KdW[j * le + x] * c.E[j * le + x];
      dg -= 2.f * kdw_e;
    }
    gr.dG[i * cap + j] = j <= i ? dg : 0.f;
  }
  for (int i = threadIdx.x; i < L; i += blockDim.x) {
    float kds_e = 0.f, qw_o = 0.f, qs_o = 0.f;
    for (int x = 0; x < e; ++x) {
      kds_e += ws.KdS[i * le + x] * c.E[i * le + x];
      qw_o += ws.QW[i * le + x] * ws.dO[i * le + x];
      qs_o += ws.QS[i * le + x] * ws.dO[i * le + x];
    }
    gr.dn[i] = -2.f * kds_e;
    gr.dbeta[i] = qw_o + (i == L - 1 ? dw_w : 0.f);
    gr.df[i] = qs_o + (i == L - 1 ? dw_s : 0.f);
  }
  if (threadIdx.x == 0) gr.dm_last[0] = ds_s;
  __syncthreads();
  const long long lo = a.row(bh, c.t0, 1);
  auto at = [lo](D* p) { return p ? p + lo : nullptr; };
  memory_gates::gate_logit_grads(g, gr, L, cap, a.theta_logit + lo, a.eta_logit + lo, a.alpha_logit + lo, a.H,
                                 at(a.dtheta_logit), at(a.deta_logit), at(a.dalpha_logit));  // synchronises
  // dQ = diag(beta) dO W^T + diag(f) dO S^T - 2 B K and dK = dE W^T - 2 B^T Q - 2 diag(g) E dW^T
  // - 2 diag(n) E dS^T, with B = G o DOE; dV = -dE.
  for (int idx = threadIdx.x; idx < L * d; idx += blockDim.x) {
    const int i = idx / d, r = idx % d;
    if (a.dq) {
      float ow = 0.f, os = 0.f, bk = 0.f;
      for (int x = 0; x < e; ++x) ow += ws.dO[i * le + x] * W[r * le + x], os += ws.dO[i * le + x] * S[r * le + x];
      for (int j = 0; j <= i; ++j) bk += g.G[i * cap + j] * ws.DOE[i * cap + j] * c.K[j * lq + r];
      a.dq[a.row(bh, c.t0 + i, d) + r] = from_f32<D>(g.beta[i] * ow + g.f[i] * os - 2.f * bk);
    }
    if (a.dk) {
      const int j = i;
      float ew = 0.f, edw = 0.f, eds = 0.f, bq = 0.f;
      for (int x = 0; x < e; ++x) {
        ew += ws.dE[j * le + x] * W[r * le + x];
        edw += c.E[j * le + x] * ws.dW[r * le + x];
        eds += c.E[j * le + x] * ws.dS[r * le + x];
      }
      for (int i2 = j; i2 < L; ++i2) bq += g.G[i2 * cap + j] * ws.DOE[i2 * cap + j] * c.Q[i2 * lq + r];
      a.dk[a.row(bh, c.t0 + j, d) + r] = from_f32<D>(ew - 2.f * bq - 2.f * gl[j] * edw - 2.f * nl[j] * eds);
    }
  }
  if (a.dv)
    for (int idx = threadIdx.x; idx < L * e; idx += blockDim.x)
      a.dv[a.row(bh, c.t0 + idx / e, e) + idx % e] = from_f32<D>(-ws.dE[idx / e * le + idx % e]);
  __syncthreads();
  // dW0 = beta_L dW + Q^T diag(beta) dO + K^T dE, dS0 = f_L dW + m_L dS + Q^T diag(f) dO.
  for (int idx = threadIdx.x; idx < d * e; idx += blockDim.x) {
    const int r = idx / e, x = idx % e, o = r * le + x;
    float qbo = 0.f, ke = 0.f, qfo = 0.f;
    for (int i = 0; i < L; ++i) {
      const float qo = c.Q[i * lq + r] * ws.dO[i * le + x];
      qbo += g.beta[i] * qo, qfo += g.f[i] * qo, ke += c.K[i * lq + r] * ws.dE[i * le + x];
    }
    const float dw = ws.dW[o], ds = ws.dS[o];
    ws.dW[o] = g.beta[L - 1] * dw + qbo + ke;
    ws.dS[o] = g.f[L - 1] * dw + g.m[L - 1] * ds + qfo;
  }
  __syncthreads();
}

template <typename D>
__global__ void __launch_bounds__(kThreads) backward_kernel(Args<D> a) {
  const long long bh = blockIdx.x, n = a.de(), chunks = a.chunks();
  const int d = a.d, e = a.e, le = a.le;
  BackwardWs ws(block_workspace(a.workspace, a.workspace_floats), d, a.lq, le, a.cap);
  load_state(ws.dW, a.dw_final + bh * n, d, e, le);
  load_state(ws.dS, a.ds_final + bh * n, d, e, le);
  const float* kept = a.kept + bh * a.checkpoints * 2 * n;
  float* states = a.states + bh * a.every * 2 * n;
  for (long long cp = chunks > 0 ? a.checkpoints - 1 : -1; cp >= 0; --cp) {
    const long long j0 = cp * a.every, j1 = min(chunks, j0 + a.every);
    // The start states of chunks j0 .. j1 - 1, from the kept one.
    load_state(ws.W, kept + cp * 2 * n, d, e, le);
    load_state(ws.S, kept + cp * 2 * n + n, d, e, le);
    __syncthreads();
    for (long long j = j0; j < j1; ++j) {
      store_state(states + (j - j0) * 2 * n, ws.W, d, e, le);
      store_state(states + (j - j0) * 2 * n + n, ws.S, d, e, le);
      if (j + 1 == j1) break;
      load_chunk(a, bh, j, ws.c);
      form_error(ws.c, ws.W, d, e, a.lq, le);
      chunk_forward(a, bh, ws.c, ws.W, ws.S, false);
    }
    __syncthreads();
    for (long long j = j1 - 1; j >= j0; --j) {
      load_state(ws.W, states + (j - j0) * 2 * n, d, e, le);
      load_state(ws.S, states + (j - j0) * 2 * n + n, d, e, le);
      __syncthreads();
      load_chunk(a, bh, j, ws.c);
      form_error(ws.c, ws.W, d, e, a.lq, le);
      chunk_backward(a, bh, ws);
    }
  }
  if (a.dw0) store_state(a.dw0 + bh * n, ws.dW, d, e, le);
  if (a.ds0) store_state(a.ds0 + bh * n, ws.dS, d, e, le);
}

struct DeviceFree {
  void operator()(void* p) const { device_free(p); }
};
using Scratch = std::unique_ptr<void, DeviceFree>;

Scratch scratch_floats(long long n) { return Scratch(n > 0 ? device_alloc(static_cast<size_t>(n) * sizeof(float)) : nullptr); }

template <typename D>
Args<D> make_args(const HeadShape& s, const LinearMemoryArgs& la) {
  EAT_CHECK(s.d <= (1 << 14) && s.e <= (1 << 14) && la.chunk <= (1 << 14), kOp,
            ": head widths and chunk up to 16384, got d = ", s.d, ", e = ", s.e, ", chunk ", la.chunk);
  Args<D> a{};
  a.T = s.T, a.H = static_cast<int>(s.H), a.d = static_cast<int>(s.d), a.e = static_cast<int>(s.e);
  a.lq = a.d | 1, a.le = a.e | 1;
  a.cap = static_cast<int>(std::min<int64_t>(la.chunk, std::max<int64_t>(s.T, 1)));
  a.every = static_cast<int>(std::min<int64_t>(la.checkpoint_every, int64_t{1} << 30));
  a.checkpoints = static_cast<int>(memory_checkpoints(s.T, la.chunk, la.checkpoint_every));
  a.log_max_lr = static_cast<float>(std::log(la.max_lr));
  a.w0_shared = la.w0_shared, a.s0_shared = la.s0_shared;
  return a;
}

// Runs kernel over B * H blocks with its workspace in shared memory when it fits, else in
// `global` (allocated here, one slice per block).
template <typename D>
void launch(void (*kernel)(Args<D>), Args<D>& a, long long heads, long long floats, Scratch& global) {
  a.workspace_floats = floats;
  const long long bytes = floats * static_cast<long long>(sizeof(float));
  constexpr long long kStaticSmem = 1024;  // block_reduce's slots, with room to spare
  size_t dynamic = 0;
  if (bytes + kStaticSmem <= smem_budget()) {
    dynamic = static_cast<size_t>(bytes);
    EAT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  } else {
    global = scratch_floats(heads * floats);
    a.workspace = static_cast<float*>(global.get());
  }
  kernel<<<static_cast<unsigned>(heads), kThreads, dynamic, compute_stream()>>>(a);
  EAT_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void linear_memory_forward(const HeadShape& s, const LinearMemoryArgs& la, const T* q, const T* k, const T* v,
                           const T* theta_logit, const T* eta_logit, const T* alpha_logit, const float* w0,
                           const float* s0, T* y, float* w_final, float* s_final, float* checkpoints) {
  const long long heads = s.B * s.H;
  if (heads == 0) return;
  using D = device_t<T>;
  Args<D> a = make_args<D>(s, la);
  a.q = dev(q), a.k = dev(k), a.v = dev(v);
  a.theta_logit = dev(theta_logit), a.eta_logit = dev(eta_logit), a.alpha_logit = dev(alpha_logit);
  a.w0 = w0, a.s0 = s0, a.y = dev(y), a.w_final = w_final, a.s_final = s_final, a.kept = checkpoints;
  // Given back after the launch: the caching allocator reuses it only for work queued after it.
  Scratch workspace;
  launch<D>(forward_kernel<D>, a, heads, ForwardWs::floats(a.d, a.lq, a.le, a.cap), workspace);
}

template <typename T>
void linear_memory_backward(const HeadShape& s, const LinearMemoryArgs& la, const T* q, const T* k, const T* v,
                            const T* theta_logit, const T* eta_logit, const T* alpha_logit, const float* checkpoints,
                            const T* dy, const float* dw_final, const float* ds_final, T* dq, T* dk, T* dv,
                            T* dtheta_logit, T* deta_logit, T* dalpha_logit, float* dw0, float* ds0) {
  const long long heads = s.B * s.H, n = s.d * s.e;
  if (heads == 0) {
    if (dw0) zero(dw0, static_cast<size_t>((la.w0_shared ? s.H : 0) * n) * sizeof(float));
    if (ds0) zero(ds0, static_cast<size_t>((la.s0_shared ? s.H : 0) * n) * sizeof(float));
    return;
  }
  using D = device_t<T>;
  Args<D> a = make_args<D>(s, la);
  a.q = dev(q), a.k = dev(k), a.v = dev(v);
  a.theta_logit = dev(theta_logit), a.eta_logit = dev(eta_logit), a.alpha_logit = dev(alpha_logit);
  a.kept = const_cast<float*>(checkpoints);  // read only by the backward
  a.dy = dev(dy), a.dw_final = dw_final, a.ds_final = ds_final;
  a.dq = dev(dq), a.dk = dev(dk), a.dv = dev(dv);
  a.dtheta_logit = dev(dtheta_logit), a.deta_logit = dev(deta_logit), a.dalpha_logit = dev(dalpha_logit);
  // Shared initial states get per-sequence gradients first, summed over the batch below.
  Scratch dw_seq = scratch_floats(dw0 && la.w0_shared ? heads * n : 0);
  Scratch ds_seq = scratch_floats(ds0 && la.s0_shared ? heads * n : 0);
  a.dw0 = la.w0_shared ? static_cast<float*>(dw_seq.get()) : dw0;
  a.ds0 = la.s0_shared ? static_cast<float*>(ds_seq.get()) : ds0;
  Scratch states = scratch_floats(heads * a.every * 2 * n), workspace;
  a.states = static_cast<float*>(states.get());
  launch<D>(backward_kernel<D>, a, heads, BackwardWs::floats(a.d, a.lq, a.le, a.cap), workspace);
  for (auto [seq, out] : {std::pair{dw_seq.get(), dw0}, std::pair{ds_seq.get(), ds0}})
    if (seq) column_sums_finish<float>(static_cast<const float*>(seq), s.B, s.H * n, out);
}

EAT_LINEAR_MEMORY_INSTANTIATE(float)
EAT_LINEAR_MEMORY_INSTANTIATE(bf16)

}  // namespace eat::cuda
