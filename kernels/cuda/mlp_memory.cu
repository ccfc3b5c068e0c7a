// Titans' MLP memory on the GPU (kernels/mlp_memory.h; the arithmetic of kernels/cpu/mlp_memory.cpp).
// The host walks the chunks in order; each chunk's work is batched over every (batch, head): its
// rows are gathered into contiguous f32 buffers [BH, L, width] (bf16 storage is widened here),
// every product is one cuBLAS strided-batched f32 GEMM over the BH heads (gemm_batched), and the
// rest are small elementwise kernels and one block per head for the gates
// (kernels/cuda/memory_gates.cuh). The states ([BH, state]: W1, W2, S1, S2 one after the
// other, 2 (d h + h e) floats per head, too large for shared memory) stay in global f32 buffers.
// No atomics: every sum runs in one thread or in a fixed-shape block reduction, so results are
// deterministic. The backward recomputes the states between kept ones into a scratch of
// `stride` states per head, then walks that stretch's chunks in reverse (titans.md 3.3).
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"
#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/memory_gates.cuh"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/matmul.h"
#include "kernels/mlp_memory.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

constexpr int kThreads = 256;

// The gate logits of one chunk: token t0 + l of head (b, h) in [B, T, H] tensors.
template <typename D>
struct ChunkLogits {
  const D *theta, *eta, *alpha;
  int64_t T, H, t0;
  __device__ int64_t at(int64_t bh, int64_t l) const { return ((bh / H) * T + t0 + l) * H + bh % H; }
};

// Every head's gates of one chunk of L tokens: log theta, le, lb, beta, m, f, g, n [BH, L] and
// P, N, G [BH, L, L] (g and n: the last rows of G and N, copied out for the row scalings).
struct GateBuffers {
  float *log_theta, *le, *lb, *beta, *m, *f, *g, *n, *P, *N, *G;
  // Head bh's slice, with row stride L.
  __device__ memory_gates::ChunkGates head(int64_t bh, int64_t L) const {
    memory_gates::ChunkGates c;
    const int64_t v0 = bh * L, m0 = bh * L * L;
    c.log_theta = log_theta + v0, c.lb = lb + v0, c.le = le + v0, c.beta = beta + v0, c.m = m + v0, c.f = f + v0;
    c.P = P + m0, c.N = N + m0, c.G = G + m0;
    return c;
  }
};

// The gates' gradients like GateBuffers: dG [BH, L, L], dg (of g, folded into dG's last row by
// gates_backward_kernel), dn, dbeta, df [BH, L], dm_last [BH]; X, Y and dm are the map's scratch.
struct GateGradBuffers {
  float *dG, *dg, *dn, *dbeta, *df, *dm_last, *X, *Y, *dm;
  __device__ memory_gates::GateGrads head(int64_t bh, int64_t L) const {
    memory_gates::GateGrads g;
    const int64_t v0 = bh * L, m0 = bh * L * L;
    g.dG = dG + m0, g.X = X + m0, g.Y = Y + m0;
    g.dn = dn + v0, g.dbeta = dbeta + v0, g.df = df + v0, g.dm = dm + v0, g.dm_last = dm_last + bh;
    return g;
  }
};

// One block per head (kernels/cuda/memory_gates.cuh).
template <typename D>
__global__ void gates_forward_kernel(ChunkLogits<D> logits, int L, float log_max_lr, GateBuffers o) {
  const int64_t bh = blockIdx.x, at = logits.at(bh, 0);
  const memory_gates::ChunkGates c = o.head(bh, L);
  memory_gates::build_gates(c, L, L, logits.theta + at, logits.eta + at, logits.alpha + at, logits.H, log_max_lr);
  for (int j = threadIdx.x; j < L; j += blockDim.x) {
    o.g[bh * L + j] = c.G[(L - 1) * L + j];
    o.n[bh * L + j] = c.N[(L - 1) * L + j];
  }
}

template <typename D>
__global__ void gates_backward_kernel(ChunkLogits<D> logits, int L, GateBuffers c, GateGradBuffers d, D* dtheta,
                                      D* deta, D* dalpha) {
  const int64_t bh = blockIdx.x, at = logits.at(bh, 0);
  for (int j = threadIdx.x; j < L; j += blockDim.x) d.dG[(bh * L + L - 1) * L + j] += d.dg[bh * L + j];
  __syncthreads();
  memory_gates::gate_logit_grads(c.head(bh, L), d.head(bh, L), L, L, logits.theta + at, logits.eta + at,
                                 logits.alpha + at, logits.H, dtheta ? dtheta + at : nullptr,
                                 deta ? deta + at : nullptr, dalpha ? dalpha + at : nullptr);
}

__device__ __forceinline__ float silu_f32(float z) { return z * sigmoid_f32(z); }
__device__ __forceinline__ float silu_first_f32(float z) { return silu_slope_f32(z, sigmoid_f32(z)); }
__device__ __forceinline__ float silu_second_f32(float z) {
  const float s = sigmoid_f32(z);
  return s * (1.0f - s) * (2.0f + z * (1.0f - 2.0f * s));
}

// Runs f(i) for i in [0, n) (f: a functor with a __device__ operator()(int64_t)).
template <typename F>
__global__ void for_each_kernel(int64_t n, F f) {
  EAT_GRID_STRIDE(i, n) f(i);
}
template <typename F>
void for_each(int64_t n, F f) {
  if (n <= 0) return;
  for_each_kernel<<<grid_for(n, kThreads), kThreads, 0, compute_stream()>>>(n, f);
  EAT_CUDA_CHECK_LAUNCH();
}

// Rows [t0, t0 + L) of every head of a [B, T, H, w] tensor <-> a contiguous f32 [BH, L, w].
struct ChunkRows {
  int64_t T, H, t0, L, w;
  __device__ int64_t token_index(int64_t i) const {
    const int64_t bh = i / (L * w), r = (i / w) % L, c = i % w;
    return (((bh / H) * T + t0 + r) * H + bh % H) * w + c;
  }
};
template <typename D>
struct Gather {
  ChunkRows rows;
  const D* src;
  float* dst;
  __device__ void operator()(int64_t i) const { dst[i] = to_f32(src[rows.token_index(i)]); }
};
// dst = sign * src, written into the token rows (skipped when dst is null).
template <typename D>
struct Scatter {
  ChunkRows rows;
  const float* src;
  float sign;
  D* dst;
  __device__ void operator()(int64_t i) const { dst[rows.token_index(i)] = from_f32<D>(sign * src[i]); }
};
// y = beta o AqW2 + f o AqS2 - O, into the token rows.
template <typename D>
struct WriteOutput {
  ChunkRows rows;
  const float *beta, *f, *AqW2, *AqS2, *O;
  D* y;
  __device__ void operator()(int64_t i) const {
    const int64_t row = i / rows.w;
    y[rows.token_index(i)] = from_f32<D>(beta[row] * AqW2[i] + f[row] * AqS2[i] - O[i]);
  }
};

struct SiluOf {
  const float* z;
  float* a;
  __device__ void operator()(int64_t i) const { a[i] = silu_f32(z[i]); }
};
// E = 2 (A W2 - V), in place on A W2.
struct ErrorOf {
  const float* v;
  float* e;
  __device__ void operator()(int64_t i) const { e[i] = 2.0f * (e[i] - v[i]); }
};
// out = a o silu'(z).
struct TimesSiluFirst {
  const float *a, *z;
  float* out;
  __device__ void operator()(int64_t i) const { out[i] = a[i] * silu_first_f32(z[i]); }
};
// out = sign * x o y, on L x L matrices: the lower triangle only where `lower` (zeros above).
struct Product {
  const float *x, *y;
  float sign;
  float* out;
  int64_t L;
  bool lower, accumulate;
  __device__ void operator()(int64_t i) const {
    float v = sign * x[i] * y[i];
    if (lower && (i % L) > (i / L) % L) v = 0.0f;
    out[i] = accumulate ? out[i] + v : v;
  }
};
// out = sign * scale[row] o x for [rows, w].
struct RowScale {
  const float *scale, *x;
  float sign;
  float* out;
  int64_t w;
  __device__ void operator()(int64_t i) const { out[i] = sign * scale[i / w] * x[i]; }
};
// Hq = beta o QW1 + f o QS1 - Hq (Hq holds (G o QK^T) D); Aq = silu(Hq).
struct PreActivation {
  const float *beta, *f, *QW1, *QS1;
  float *Hq, *Aq;
  int64_t w;
  __device__ void operator()(int64_t i) const {
    const int64_t row = i / w;
    const float h = beta[row] * QW1[i] + f[row] * QS1[i] - Hq[i];
    Hq[i] = h;
    Aq[i] = silu_f32(h);
  }
};
// out -= a[row] x + b[row] y.
struct SubtractRowScaled {
  const float *a, *x, *b, *y;
  float* out;
  int64_t w;
  __device__ void operator()(int64_t i) const { out[i] -= a[i / w] * x[i] + b[i / w] * y[i]; }
};
// D = R o silu'(Z): dR = dD o silu'(Z), dZ = dD o R o silu''(Z).
struct DeltaBackward {
  const float *dD, *R, *Z;
  float *dR, *dZ;
  __device__ void operator()(int64_t i) const {
    dR[i] = dD[i] * silu_first_f32(Z[i]);
    dZ[i] = dD[i] * R[i] * silu_second_f32(Z[i]);
  }
};
// out += x o silu'(z).
struct AddTimesSiluFirst {
  const float *x, *z;
  float* out;
  __device__ void operator()(int64_t i) const { out[i] += x[i] * silu_first_f32(z[i]); }
};
struct Scale {
  const float* x;
  float s;
  float* out;
  __device__ void operator()(int64_t i) const { out[i] = s * x[i]; }
};

// One head's state layout in [BH, size] buffers: W1 [d, h], W2 [h, e], S1 [d, h], S2 [h, e].
struct StateLayout {
  int64_t w1, w2, size;
  explicit StateLayout(const MlpMemoryShape& s) : w1(s.w1_size()), w2(s.w2_size()), size(s.state_size()) {}
  __host__ __device__ int64_t o_w2() const { return w1; }
  __host__ __device__ int64_t o_s1() const { return w1 + w2; }
  __host__ __device__ int64_t o_s2() const { return 2 * w1 + w2; }
};

// The chunk-end state's decay terms: W1' = beta_b W1 + f_b S1, S1' = m_b S1, W2' and S2' alike
// (the products with K, A follow); the chunk-start gradient's: d0 += (beta_b dW1, f_b dW1 + m_b dS1, ...).
struct StateDecay {
  StateLayout st;
  const float *beta, *f, *m, *from;
  float* to;
  int64_t L;
  bool accumulate, transposed;  // transposed: the adjoint (the gradient of the chunk-start state)
  __device__ void operator()(int64_t i) const {
    const int64_t bh = i / st.size, x = i % st.size, last = bh * L + L - 1;
    const float* s = from + bh * st.size;
    const float bb = beta[last], fb = f[last], mb = m[last];
    float v;
    if (x < st.o_s1()) {  // W1 or W2: its momentum is st.w1 + st.w2 further
      v = transposed ? bb * s[x] : bb * s[x] + fb * s[x + st.w1 + st.w2];
    } else {  // S1 or S2
      v = transposed ? fb * s[x - st.w1 - st.w2] + mb * s[x] : mb * s[x];
    }
    to[i] = accumulate ? to[i] + v : v;
  }
};

// The initial state [BH, size] from W1, W2 (per head, or shared by the batch) and S1, S2 (zero when null).
struct InitialState {
  StateLayout st;
  int64_t H;
  bool shared;
  const float *w1, *w2, *s1, *s2;
  float* to;
  __device__ void operator()(int64_t i) const {
    const int64_t bh = i / st.size, x = i % st.size, wh = shared ? bh % H : bh;
    float v;
    if (x < st.o_w2()) v = w1[wh * st.w1 + x];
    else if (x < st.o_s1()) v = w2[wh * st.w2 + x - st.o_w2()];
    else if (x < st.o_s2()) v = s1 ? s1[bh * st.w1 + x - st.o_s1()] : 0.0f;
    else v = s2 ? s2[bh * st.w2 + x - st.o_s2()] : 0.0f;
    to[i] = v;
  }
};
// A [BH, size] buffer <-> four [BH, ...] tensors (null ones skipped).
struct SplitState {
  StateLayout st;
  const float* from;
  float *w1, *w2, *s1, *s2;
  __device__ void operator()(int64_t i) const {
    const int64_t bh = i / st.size, x = i % st.size;
    if (x < st.o_w2()) {
      if (w1) w1[bh * st.w1 + x] = from[i];
    } else if (x < st.o_s1()) {
      if (w2) w2[bh * st.w2 + x - st.o_w2()] = from[i];
    } else if (x < st.o_s2()) {
      if (s1) s1[bh * st.w1 + x - st.o_s1()] = from[i];
    } else if (s2) {
      s2[bh * st.w2 + x - st.o_s2()] = from[i];
    }
  }
};
struct JoinState {
  StateLayout st;
  const float *w1, *w2, *s1, *s2;
  float* to;
  __device__ void operator()(int64_t i) const {
    const int64_t bh = i / st.size, x = i % st.size;
    if (x < st.o_w2()) to[i] = w1[bh * st.w1 + x];
    else if (x < st.o_s1()) to[i] = w2[bh * st.w2 + x - st.o_w2()];
    else if (x < st.o_s2()) to[i] = s1[bh * st.w1 + x - st.o_s1()];
    else to[i] = s2[bh * st.w2 + x - st.o_s2()];
  }
};
// out[r] (+)= sign * (sum_c x[r, c] y[r, c] + sum_c x2[r, c] y2[r, c]) for x, y [rows, w] and
// x2, y2 [rows, w2] (none when x2 is null).
struct RowDots {
  const float *x, *y, *x2, *y2;
  float sign;
  float* out;
  int64_t w, w2;
  bool accumulate;
  __device__ void operator()(int64_t r) const {
    float s = 0.0f;
    for (int64_t c = 0; c < w; ++c) s += x[r * w + c] * y[r * w + c];
    if (x2)
      for (int64_t c = 0; c < w2; ++c) s += x2[r * w2 + c] * y2[r * w2 + c];
    out[r] = accumulate ? out[r] + sign * s : sign * s;
  }
};

// Per head, the three dot products of the chunk-end state's gradient ds with the chunk-start state
// st: dbeta[last] += <dW1, W1> + <dW2, W2>; df[last] += <dW1, S1> + <dW2, S2>;
// dm_last = <dS1, S1> + <dS2, S2>. One block per head, a fixed-shape tree: deterministic.
__global__ void state_dots_kernel(StateLayout lay, const float* ds, const float* st, int64_t L, float* dbeta, float* df,
                                  float* dm_last) {
  __shared__ float partial[3][kThreads];
  const int64_t bh = blockIdx.x;
  const float *g = ds + bh * lay.size, *s = st + bh * lay.size;
  float a = 0.0f, b = 0.0f, c = 0.0f;
  const int64_t weights = lay.w1 + lay.w2;
  for (int64_t x = threadIdx.x; x < weights; x += blockDim.x) {
    a += g[x] * s[x];
    b += g[x] * s[x + weights];
    c += g[x + weights] * s[x + weights];
  }
  partial[0][threadIdx.x] = a;
  partial[1][threadIdx.x] = b;
  partial[2][threadIdx.x] = c;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride)
      for (int k = 0; k < 3; ++k) partial[k][threadIdx.x] += partial[k][threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    dbeta[bh * L + L - 1] += partial[0][0];
    df[bh * L + L - 1] += partial[1][0];
    dm_last[bh] = partial[2][0];
  }
}

struct DeviceFree {
  void operator()(void* p) const { device_free(p); }
};

// f32 device buffers, given back when the workspace goes (the caching allocator hands them out
// again only to work queued after their last use).
class Buffers {
 public:
  float* get(int64_t n) {
    blocks_.emplace_back(device_alloc(static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float)));
    return static_cast<float*>(blocks_.back().get());
  }

 private:
  std::vector<std::unique_ptr<void, DeviceFree>> blocks_;
};

// Everything one chunk step reads and writes, for every head at once; sized for full chunks.
template <typename D>
struct Workspace {
  const MlpMemoryShape& s;
  const MlpMemoryArgs& a;
  StateLayout lay;
  int64_t BH, C;
  const D *q, *k, *v, *theta, *eta, *alpha;
  Buffers mem;
  GateBuffers gates;
  float *Q, *K, *V, *Z, *A, *E, *R, *Dl, *QK, *GQK, *QW1, *QS1, *Hq, *Aq, *AqA, *GAA, *AqW2, *AqS2, *O;
  float *gD, *nD, *gE, *nE;  // -g o D, -n o D, -g o E, -n o E

  Workspace(const MlpMemoryShape& s_, const MlpMemoryArgs& a_, const D* q_, const D* k_, const D* v_, const D* th,
            const D* et, const D* al)
      : s(s_), a(a_), lay(s_), BH(s_.B * s_.H), C(std::min(a_.chunk, std::max<int64_t>(s_.T, 1))), q(q_), k(k_), v(v_),
        theta(th), eta(et), alpha(al) {
    // The gates index their L x L matrices with int (kernels/cuda/memory_gates.cuh).
    EAT_CHECK(C <= (1 << 14), "mlp_memory: chunk up to 16384 on CUDA, got ", a.chunk);
    const int64_t vec = BH * C, sq = BH * C * C, nd = BH * C * s.d, nh = BH * C * s.hidden, ne = BH * C * s.e;
    gates = {mem.get(vec), mem.get(vec), mem.get(vec), mem.get(vec), mem.get(vec), mem.get(vec),
             mem.get(vec), mem.get(vec), mem.get(sq),  mem.get(sq),  mem.get(sq)};
    Q = mem.get(nd), K = mem.get(nd), V = mem.get(ne);
    Z = mem.get(nh), A = mem.get(nh), E = mem.get(ne), R = mem.get(nh), Dl = mem.get(nh);
    QK = mem.get(sq), GQK = mem.get(sq), QW1 = mem.get(nh), QS1 = mem.get(nh), Hq = mem.get(nh), Aq = mem.get(nh);
    AqA = mem.get(sq), GAA = mem.get(sq), AqW2 = mem.get(ne), AqS2 = mem.get(ne), O = mem.get(ne);
    gD = mem.get(nh), nD = mem.get(nh), gE = mem.get(ne), nE = mem.get(ne);
  }

  int64_t length(int64_t j) const { return std::min(a.chunk, s.T - j * a.chunk); }
  ChunkRows rows(int64_t j, int64_t w) const { return {s.T, s.H, j * a.chunk, length(j), w}; }
  ChunkLogits<device_t<D>> logits(int64_t j) const {
    return {dev(theta), dev(eta), dev(alpha), s.T, s.H, j * a.chunk};
  }

  // C[M, N] (+)= op(A) op(B) for every head: strides of one head's operand.
  void mm(const float* x, int64_t sx, const float* y, int64_t sy, float* out, int64_t so, int64_t m, int64_t n,
          int64_t kk, bool tx, bool ty, bool acc) const {
    gemm_batched<float>(BH, x, sx, y, sy, out, so, m, n, kk, tx, ty, acc);
  }

  void gather(const D* src, int64_t j, int64_t w, float* dst) const {
    const ChunkRows r = rows(j, w);
    for_each(BH * r.L * w, Gather<device_t<D>>{r, dev(src), dst});
  }

  // The chunk's inputs, gates and the terms the next state needs: Z, A, E, R, D and -g o D, ...
  void chunk_inputs(int64_t j, const float* st) {
    const int64_t L = length(j), d = s.d, h = s.hidden, e = s.e, ss = lay.size;
    gather(q, j, d, Q);
    gather(k, j, d, K);
    gather(v, j, e, V);
    gates_forward_kernel<<<static_cast<unsigned>(BH), kThreads, 0, compute_stream()>>>(
        logits(j), static_cast<int>(L), static_cast<float>(std::log(a.max_lr)), gates);
    EAT_CUDA_CHECK_LAUNCH();
    mm(K, L * d, st, ss, Z, L * h, L, h, d, false, false, false);  // Z = K W1
    for_each(BH * L * h, SiluOf{Z, A});
    mm(A, L * h, st + lay.o_w2(), ss, E, L * e, L, e, h, false, false, false);  // A W2
    for_each(BH * L * e, ErrorOf{V, E});
    mm(E, L * e, st + lay.o_w2(), ss, R, L * h, L, h, e, false, true, false);  // R = E W2^T
    for_each(BH * L * h, TimesSiluFirst{R, Z, Dl});
    for_each(BH * L * h, RowScale{gates.g, Dl, -1.0f, gD, h});
    for_each(BH * L * h, RowScale{gates.n, Dl, -1.0f, nD, h});
    for_each(BH * L * e, RowScale{gates.g, E, -1.0f, gE, e});
    for_each(BH * L * e, RowScale{gates.n, E, -1.0f, nE, e});
  }

  // The state after chunk j from the one entering it (after chunk_inputs(j, st)).
  void next_state(int64_t j, const float* st, float* out) const {
    const int64_t L = length(j), d = s.d, h = s.hidden, e = s.e, ss = lay.size;
    for_each(BH * ss, StateDecay{lay, gates.beta, gates.f, gates.m, st, out, L, false, false});
    mm(K, L * d, gD, L * h, out, ss, d, h, L, true, false, true);                          // W1' -= K^T (g o D)
    mm(A, L * h, gE, L * e, out + lay.o_w2(), ss, h, e, L, true, false, true);             // W2' -= A^T (g o E)
    mm(K, L * d, nD, L * h, out + lay.o_s1(), ss, d, h, L, true, false, true);             // S1' -= K^T (n o D)
    mm(A, L * h, nE, L * e, out + lay.o_s2(), ss, h, e, L, true, false, true);             // S2' -= A^T (n o E)
  }

  // The terms the output and the backward read: Hq, Aq, the masked scores, Aq W2, Aq S2.
  void chunk_outputs(int64_t j, const float* st) {
    const int64_t L = length(j), d = s.d, h = s.hidden, e = s.e, ss = lay.size, sq = L * L;
    mm(Q, L * d, K, L * d, QK, sq, L, L, d, false, true, false);              // Q K^T
    for_each(BH * sq, Product{gates.G, QK, 1.0f, GQK, L, false, false});      // G o QK^T
    mm(Q, L * d, st, ss, QW1, L * h, L, h, d, false, false, false);
    mm(Q, L * d, st + lay.o_s1(), ss, QS1, L * h, L, h, d, false, false, false);
    mm(GQK, sq, Dl, L * h, Hq, L * h, L, h, L, false, false, false);
    for_each(BH * L * h, PreActivation{gates.beta, gates.f, QW1, QS1, Hq, Aq, h});
    mm(Aq, L * h, A, L * h, AqA, sq, L, L, h, false, true, false);            // Aq A^T
    for_each(BH * sq, Product{gates.G, AqA, 1.0f, GAA, L, false, false});
    mm(Aq, L * h, st + lay.o_w2(), ss, AqW2, L * e, L, e, h, false, false, false);
    mm(Aq, L * h, st + lay.o_s2(), ss, AqS2, L * e, L, e, h, false, false, false);
  }
};

// The backward's own buffers.
struct GradBuffers {
  float *dO, *dOE, *dG, *negB, *tmp_sq, *dAq, *dA, *dE, *dHq, *dHD, *rs_h, *rs_h2, *dQ, *dK, *dD, *KdW1, *KdS1,
      *AdW2, *AdS2, *dR, *dZ, *dE2, *rs_e, *rs_e2;
  GateGradBuffers g;
  GradBuffers(Buffers& mem, int64_t BH, int64_t C, const MlpMemoryShape& s) {
    const int64_t vec = BH * C, sq = BH * C * C, nd = BH * C * s.d, nh = BH * C * s.hidden, ne = BH * C * s.e;
    dO = mem.get(ne), dOE = mem.get(sq), dG = mem.get(sq), negB = mem.get(sq), tmp_sq = mem.get(sq);
    dAq = mem.get(nh), dA = mem.get(nh), dE = mem.get(ne), dHq = mem.get(nh), dHD = mem.get(sq);
    rs_h = mem.get(nh), rs_h2 = mem.get(nh), dQ = mem.get(nd), dK = mem.get(nd), dD = mem.get(nh);
    KdW1 = mem.get(nh), KdS1 = mem.get(nh), AdW2 = mem.get(ne), AdS2 = mem.get(ne), dR = mem.get(nh), dZ = mem.get(nh);
    dE2 = mem.get(ne), rs_e = mem.get(ne), rs_e2 = mem.get(ne);
    g = {dG, mem.get(vec), mem.get(vec), mem.get(vec), mem.get(vec), mem.get(BH), mem.get(sq), mem.get(sq), mem.get(vec)};
  }
};

// One chunk's backward (titans.md 3.2): the gradients of its tokens' inputs, and d0 (the gradient
// of the state entering it) from ds (that of the state at its end). w holds chunk_inputs and
// chunk_outputs of chunk j at state st.
template <typename D>
void chunk_backward(Workspace<D>& w, GradBuffers& b, int64_t j, const float* st, const float* ds, float* d0,
                    const D* dy, D* dq, D* dk, D* dv, D* dtheta, D* deta, D* dalpha) {
  const MlpMemoryShape& s = w.s;
  const int64_t L = w.length(j), d = s.d, h = s.hidden, e = s.e, ss = w.lay.size, sq = L * L, BH = w.BH;
  const StateLayout& lay = w.lay;
  const GateBuffers& c = w.gates;
  const int64_t nh = BH * L * h, ne = BH * L * e, nsq = BH * sq;
  w.gather(dy, j, e, b.dO);

  // Y = beta o Aq W2 + f o Aq S2 - (G o Aq A^T) E.
  w.mm(b.dO, L * e, w.E, L * e, b.dOE, sq, L, L, e, false, true, false);      // dO E^T
  for_each(nsq, Product{w.AqA, b.dOE, -1.0f, b.dG, L, true, false});          // dG = -lower(AqA o dOE)
  for_each(nsq, Product{c.G, b.dOE, -1.0f, b.negB, L, false, false});         // -(G o dO E^T)
  for_each(BH * L, RowDots{w.AqW2, b.dO, nullptr, nullptr, 1.0f, b.g.dbeta, e, 0, false});
  for_each(BH * L, RowDots{w.AqS2, b.dO, nullptr, nullptr, 1.0f, b.g.df, e, 0, false});
  for_each(ne, RowScale{c.beta, b.dO, 1.0f, b.rs_e, e});                      // beta o dO
  for_each(ne, RowScale{c.f, b.dO, 1.0f, b.rs_e2, e});                        // f o dO
  w.mm(b.rs_e, L * e, st + lay.o_w2(), ss, b.dAq, L * h, L, h, e, false, true, false);
  w.mm(b.rs_e2, L * e, st + lay.o_s2(), ss, b.dAq, L * h, L, h, e, false, true, true);
  w.mm(b.negB, sq, w.A, L * h, b.dAq, L * h, L, h, L, false, false, true);
  w.mm(w.Aq, L * h, b.rs_e, L * e, d0 + lay.o_w2(), ss, h, e, L, true, false, false);   // dW2 = Aq^T (beta o dO)
  w.mm(w.Aq, L * h, b.rs_e2, L * e, d0 + lay.o_s2(), ss, h, e, L, true, false, false);  // dS2 = Aq^T (f o dO)
  w.mm(b.negB, sq, w.Aq, L * h, b.dA, L * h, L, h, L, true, false, false);              // dA = -(G o dO E^T)^T Aq
  for_each(nsq, Scale{w.GAA, -1.0f, b.tmp_sq});
  w.mm(b.tmp_sq, sq, b.dO, L * e, b.dE, L * e, L, e, L, true, false, false);            // dE = -(G o Aq A^T)^T dO

  // Hq = beta o Q W1 + f o Q S1 - (G o Q K^T) D, Aq = silu(Hq).
  for_each(nh, TimesSiluFirst{b.dAq, w.Hq, b.dHq});
  for_each(BH * L, RowDots{w.QW1, b.dHq, nullptr, nullptr, 1.0f, b.g.dbeta, h, 0, true});
  for_each(BH * L, RowDots{w.QS1, b.dHq, nullptr, nullptr, 1.0f, b.g.df, h, 0, true});
  w.mm(b.dHq, L * h, w.Dl, L * h, b.dHD, sq, L, L, h, false, true, false);    // dHq D^T
  for_each(nsq, Product{w.QK, b.dHD, -1.0f, b.dG, L, true, true});            // dG -= lower(QK o dHD)
  for_each(nsq, Product{c.G, b.dHD, -1.0f, b.negB, L, false, false});         // -(G o dHq D^T)
  for_each(nh, RowScale{c.beta, b.dHq, 1.0f, b.rs_h, h});
  for_each(nh, RowScale{c.f, b.dHq, 1.0f, b.rs_h2, h});
  w.mm(b.rs_h, L * h, st, ss, b.dQ, L * d, L, d, h, false, true, false);
  w.mm(b.rs_h2, L * h, st + lay.o_s1(), ss, b.dQ, L * d, L, d, h, false, true, true);
  w.mm(b.negB, sq, w.K, L * d, b.dQ, L * d, L, d, L, false, false, true);
  w.mm(b.negB, sq, w.Q, L * d, b.dK, L * d, L, d, L, true, false, false);
  for_each(nsq, Scale{w.GQK, -1.0f, b.tmp_sq});
  w.mm(b.tmp_sq, sq, b.dHq, L * h, b.dD, L * h, L, h, L, true, false, false);  // dD = -(G o QK^T)^T dHq
  w.mm(w.Q, L * d, b.rs_h, L * h, d0, ss, d, h, L, true, false, false);                  // dW1 = Q^T (beta o dHq)
  w.mm(w.Q, L * d, b.rs_h2, L * h, d0 + lay.o_s1(), ss, d, h, L, true, false, false);    // dS1 = Q^T (f o dHq)

  // The chunk-end state (W1' = beta_b W1 + f_b S1 - K^T (g o D), ...).
  w.mm(w.K, L * d, ds, ss, b.KdW1, L * h, L, h, d, false, false, false);
  w.mm(w.K, L * d, ds + lay.o_s1(), ss, b.KdS1, L * h, L, h, d, false, false, false);
  w.mm(w.A, L * h, ds + lay.o_w2(), ss, b.AdW2, L * e, L, e, h, false, false, false);
  w.mm(w.A, L * h, ds + lay.o_s2(), ss, b.AdS2, L * e, L, e, h, false, false, false);
  for_each(BH * L, RowDots{b.KdW1, w.Dl, b.AdW2, w.E, -1.0f, b.g.dg, h, e, false});
  for_each(BH * L, RowDots{b.KdS1, w.Dl, b.AdS2, w.E, -1.0f, b.g.dn, h, e, false});
  for_each(nh, SubtractRowScaled{c.g, b.KdW1, c.n, b.KdS1, b.dD, h});
  for_each(ne, SubtractRowScaled{c.g, b.AdW2, c.n, b.AdS2, b.dE, e});
  w.mm(w.gD, L * h, ds, ss, b.dK, L * d, L, d, h, false, true, true);                   // dK -= (g o D) dW1^T
  w.mm(w.nD, L * h, ds + lay.o_s1(), ss, b.dK, L * d, L, d, h, false, true, true);
  w.mm(w.gE, L * e, ds + lay.o_w2(), ss, b.dA, L * h, L, h, e, false, true, true);      // dA -= (g o E) dW2^T
  w.mm(w.nE, L * e, ds + lay.o_s2(), ss, b.dA, L * h, L, h, e, false, true, true);
  for_each(BH * ss, StateDecay{lay, c.beta, c.f, c.m, ds, d0, L, true, true});
  state_dots_kernel<<<static_cast<unsigned>(BH), kThreads, 0, compute_stream()>>>(lay, ds, st, L, b.g.dbeta, b.g.df,
                                                                                  b.g.dm_last);
  EAT_CUDA_CHECK_LAUNCH();

  // D = (E W2^T) o silu'(Z): silu'' enters here. Then E = 2 (A W2 - V), A = silu(Z), Z = K W1.
  for_each(nh, DeltaBackward{b.dD, w.R, w.Z, b.dR, b.dZ});
  w.mm(b.dR, L * h, st + lay.o_w2(), ss, b.dE, L * e, L, e, h, false, false, true);     // dE += dR W2
  w.mm(b.dR, L * h, w.E, L * e, d0 + lay.o_w2(), ss, h, e, L, true, false, true);       // dW2 += dR^T E
  for_each(ne, Scale{b.dE, 2.0f, b.dE2});
  w.mm(b.dE2, L * e, st + lay.o_w2(), ss, b.dA, L * h, L, h, e, false, true, true);     // dA += 2 dE W2^T
  w.mm(w.A, L * h, b.dE2, L * e, d0 + lay.o_w2(), ss, h, e, L, true, false, true);      // dW2 += A^T 2 dE
  for_each(nh, AddTimesSiluFirst{b.dA, w.Z, b.dZ});
  w.mm(b.dZ, L * h, st, ss, b.dK, L * d, L, d, h, false, true, true);                   // dK += dZ W1^T
  w.mm(w.K, L * d, b.dZ, L * h, d0, ss, d, h, L, true, false, true);                    // dW1 += K^T dZ

  if (dq) for_each(BH * L * d, Scatter<device_t<D>>{w.rows(j, d), b.dQ, 1.0f, dev(dq)});
  if (dk) for_each(BH * L * d, Scatter<device_t<D>>{w.rows(j, d), b.dK, 1.0f, dev(dk)});
  if (dv) for_each(ne, Scatter<device_t<D>>{w.rows(j, e), b.dE2, -1.0f, dev(dv)});
  gates_backward_kernel<<<static_cast<unsigned>(BH), kThreads, 0, compute_stream()>>>(
      w.logits(j), static_cast<int>(L), c, b.g, dev(dtheta), dev(deta), dev(dalpha));
  EAT_CUDA_CHECK_LAUNCH();
}

// A [BH, size] state buffer into, or out of, entry `slot` of the [BH, kept, size] checkpoints.
void save_checkpoint(const StateLayout& lay, int64_t BH, int64_t kept, int64_t slot, const float* state,
                     float* checkpoints) {
  const size_t row = static_cast<size_t>(lay.size) * sizeof(float), pitch = row * static_cast<size_t>(kept);
  EAT_CUDA_CHECK(cudaMemcpy2DAsync(checkpoints + slot * lay.size, pitch, state, row, row, static_cast<size_t>(BH),
                                   cudaMemcpyDeviceToDevice, compute_stream()));
}
void load_checkpoint(const StateLayout& lay, int64_t BH, int64_t kept, int64_t slot, const float* checkpoints,
                     float* state) {
  const size_t row = static_cast<size_t>(lay.size) * sizeof(float), pitch = row * static_cast<size_t>(kept);
  EAT_CUDA_CHECK(cudaMemcpy2DAsync(state, row, checkpoints + slot * lay.size, pitch, row, static_cast<size_t>(BH),
                                   cudaMemcpyDeviceToDevice, compute_stream()));
}

}  // namespace

template <typename T>
void mlp_memory_forward(const MlpMemoryShape& s, const MlpMemoryArgs& a, const T* q, const T* k, const T* v,
                        const T* theta_logit, const T* eta_logit, const T* alpha_logit, const float* w1,
                        const float* w2, const float* s1, const float* s2, T* y, float* w1_out, float* w2_out,
                        float* s1_out, float* s2_out, float* checkpoints) {
  const int64_t chunks = memory_chunks(s.T, a.chunk), stride = a.checkpoint_every;
  const int64_t kept = memory_checkpoints(s.T, a.chunk, stride);
  Workspace<T> w(s, a, q, k, v, theta_logit, eta_logit, alpha_logit);
  const int64_t BH = w.BH, ss = w.lay.size;
  if (BH == 0) return;
  float* cur = w.mem.get(BH * ss);
  float* nxt = w.mem.get(BH * ss);
  for_each(BH * ss, InitialState{w.lay, s.H, s.shared_weights, w1, w2, s1, s2, cur});
  save_checkpoint(w.lay, BH, kept, 0, cur, checkpoints);
  for (int64_t j = 0; j < chunks; ++j) {
    if (j > 0 && j % stride == 0) save_checkpoint(w.lay, BH, kept, j / stride, cur, checkpoints);
    const int64_t L = w.length(j);
    w.chunk_inputs(j, cur);
    w.chunk_outputs(j, cur);
    w.mm(w.GAA, L * L, w.E, L * s.e, w.O, L * s.e, L, s.e, L, false, false, false);  // (G o Aq A^T) E
    const ChunkRows r = w.rows(j, s.e);
    for_each(BH * L * s.e, WriteOutput<device_t<T>>{r, w.gates.beta, w.gates.f, w.AqW2, w.AqS2, w.O, dev(y)});
    w.next_state(j, cur, nxt);
    std::swap(cur, nxt);
  }
  for_each(BH * ss, SplitState{w.lay, cur, w1_out, w2_out, s1_out, s2_out});
}

template <typename T>
void mlp_memory_backward(const MlpMemoryShape& s, const MlpMemoryArgs& a, const T* q, const T* k, const T* v,
                         const T* theta_logit, const T* eta_logit, const T* alpha_logit, const float* checkpoints,
                         const T* dy, const float* dw1_out, const float* dw2_out, const float* ds1_out,
                         const float* ds2_out, T* dq, T* dk, T* dv, T* dtheta_logit, T* deta_logit, T* dalpha_logit,
                         float* dw1, float* dw2, float* ds1, float* ds2) {
  const int64_t chunks = memory_chunks(s.T, a.chunk), stride = a.checkpoint_every;
  const int64_t kept = memory_checkpoints(s.T, a.chunk, stride);
  Workspace<T> w(s, a, q, k, v, theta_logit, eta_logit, alpha_logit);
  const int64_t BH = w.BH, ss = w.lay.size;
  if (BH == 0) return;
  GradBuffers b(w.mem, BH, w.C, s);
  float* ds = w.mem.get(BH * ss);
  float* d0 = w.mem.get(BH * ss);
  float* entering = w.mem.get(std::min(stride, std::max<int64_t>(chunks, 1)) * BH * ss);
  for_each(BH * ss, JoinState{w.lay, dw1_out, dw2_out, ds1_out, ds2_out, ds});
  for (int64_t c = (chunks + stride - 1) / stride - 1; c >= 0; --c) {
    const int64_t j0 = c * stride, j1 = std::min(chunks, j0 + stride);
    load_checkpoint(w.lay, BH, kept, c, checkpoints, entering);
    for (int64_t j = j0 + 1; j < j1; ++j) {
      const float* from = entering + (j - 1 - j0) * BH * ss;
      w.chunk_inputs(j - 1, from);
      w.next_state(j - 1, from, entering + (j - j0) * BH * ss);
    }
    for (int64_t j = j1 - 1; j >= j0; --j) {
      const float* st = entering + (j - j0) * BH * ss;
      w.chunk_inputs(j, st);
      w.chunk_outputs(j, st);
      chunk_backward(w, b, j, st, ds, d0, dy, dq, dk, dv, dtheta_logit, deta_logit, dalpha_logit);
      std::swap(ds, d0);
    }
  }
  // Shared initial weights get per-sequence gradients first, summed over the batch in batch order.
  float* dw1_to = s.shared_weights && dw1 ? w.mem.get(BH * w.lay.w1) : dw1;
  float* dw2_to = s.shared_weights && dw2 ? w.mem.get(BH * w.lay.w2) : dw2;
  for_each(BH * ss, SplitState{w.lay, ds, dw1_to, dw2_to, ds1, ds2});
  if (s.shared_weights && dw1) column_sums_finish<float>(dw1_to, s.B, s.H * w.lay.w1, dw1);
  if (s.shared_weights && dw2) column_sums_finish<float>(dw2_to, s.B, s.H * w.lay.w2, dw2);
}

EAT_MLP_MEMORY_INSTANTIATE(float)
EAT_MLP_MEMORY_INSTANTIATE(bf16)

}  // namespace eat::cuda
