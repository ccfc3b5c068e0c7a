// Taylor linear attention (BASED), the chunked form on the GPU (kernels/taylor_attention.h; the
// arithmetic of kernels/cpu/taylor_chunked.cpp). A first, simple version: one thread block per
// (batch, head) walks the chunks of C tokens in order with the whole f32 state [S | z]
// (D' x (e + 1)) in shared memory; every tile is f32 in shared memory and every product an FMA
// loop (tile_gemm), each output element summed by one thread in a fixed order: no atomics,
// deterministic. Storage is f32 or bf16; the states (in and out, and their gradients), the
// normalisers and every sum are f32.
//   forward:  [N | Z] = A(Q, K) V' + P(Q) S,     S += P(K)^T V'        (chunks in order)
//   dq pass:  dQ = ds K + P'(Q)^T (G S^T),        S += P(K)^T V'        (chunks in order)
//   dkv pass: dV' = A^T G + P(K) R,  dK = ds^T Q + P'(K)^T (V' R^T),  R += P(Q)^T G   (reversed)
// with V' = [V | 1], G = d[N | Z] (from dy, y and the saved denominators), ds = (G V'^T) o (1 + s)
// / sqrt(f) on the causal entries, R the gradient of the state at the chunk's end (dfinal at the
// last one; what is left at the start is dS0). Limits: f <= 16, e <= 64 (BASED: 16 and 64).
// Layouts: at f = 16, e = 64 the state takes 40,448 bytes whatever C is and the chunk's tiles grow
// with C (its [C, D'] features and [C, C] scores most): 143,360 bytes in all at C = 64, 87,808 at
// 32, 63,360 at 16. The launch takes the largest chunk of kChunks whose layout fits the
// shared-memory budget (smem_budget.h): 64 on A100 and H100, 32 under the 101,376 bytes of
// sm_86/sm_89. A smaller chunk changes only the quadratic part's flops per token (which halve)
// and the summation order, not the state's.
// The sums variant (taylor_chunked_sums_*) writes [N | Z] in f32 for y and reads its gradient for
// G: the same sweeps without the division.
#include <cmath>
#include <iterator>

#include "base/dtype.h"
#include "base/error.h"
#include "kernels/cuda/smem_tile.cuh"
#include "kernels/cuda/taylor_features.cuh"
#include "kernels/taylor_attention.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

using namespace taylor_features;

constexpr int kThreads = 256;
constexpr int kChunks[] = {64, 32, 16};  // the chunk lengths the launch chooses from, largest first
constexpr int kMaxValue = 64;
constexpr const char* kOp = "taylor_attention (CUDA)";

template <typename D> struct Args {
  const D *q, *k, *v, *y;  // [B, T, H, f], [B, T, H, f], [B, T, H, e], [B, T, H, e] (y: backward only)
  const float* den;        // [B, T, H] Z + eps (normalize) or null
  const D* dy;             // [B, T, H, e] (backward)
  const float* state_in;   // [B, H, D', E] f32: s0 (forward, dq pass) or dfinal (dkv pass); may be null
  D* y_out;                // forward
  float* den_out;          // forward, normalize
  float* sums_out;         // forward of the sums variant: [B, T, H, E] f32 [N | Z] in place of y
  const float* dsums;      // backward of the sums variant: [B, T, H, E] f32 G in place of dy
  float* state_out;        // f32 final state (forward) or dS0 (dkv pass); may be null
  D *dq, *dk, *dv;         // may be null
  int B, T, H, f, e, Dp, E;
  int C;  // chunk length (kChunks)
  bool normalize;
  float eps;
  Scale scale;

  __device__ int64_t row(int b, int h, int t, int w) const { return ((static_cast<int64_t>(b) * T + t) * H + h) * w; }
};

// The shared-memory tiles of one (batch, head) sweep, all f32; C rows per chunk tile.
struct Smem {
  SmemTile<float> state;   // [D', E]: S (forward, dq pass) or R (dkv pass)
  SmemTile<float> q, k;    // [C, f]
  SmemTile<float> v;       // [C, E]: V' = [V | 1], zero past the chunk's rows
  SmemTile<float> g;       // [C, E]: G (backward) or the output [N | Z] (forward)
  SmemTile<float> a;       // [C, C]: scores or ds
  SmemTile<float> phi;     // [C, D']: features, or the gradient of the features
  SmemTile<float> dx;      // [C, f]: the chunk's dq or dk
  __host__ __device__ Smem(SmemCarver& c, int C, int f, int Dp, int E) {
    state = SmemTile<float>::make<float>(c, Dp, E);
    q = SmemTile<float>::make<float>(c, C, f);
    k = SmemTile<float>::make<float>(c, C, f);
    v = SmemTile<float>::make<float>(c, C, E);
    g = SmemTile<float>::make<float>(c, C, E);
    a = SmemTile<float>::make<float>(c, C, C);
    phi = SmemTile<float>::make<float>(c, C, Dp);
    dx = SmemTile<float>::make<float>(c, C, f);
  }
};

// The feature index of the pair (a, b), a <= b, in the symmetric packing.
__device__ __forceinline__ int pair_index(int a, int b, int f) { return 1 + f + a * f - a * (a - 1) / 2 + (b - a); }

template <typename D>
__device__ void load_rows(SmemTile<float> dst, const D* src, int64_t stride, int C, int L, int width) {
  for (int i = threadIdx.x; i < C * width; i += blockDim.x) {
    const int r = i / width, c = i % width;
    dst.at(r, c) = r < L ? to_f32(src[r * stride + c]) : 0.f;
  }
}

// V' = [V | 1] for the chunk's rows, zero past them (so padded rows never enter a state).
template <typename D>
__device__ void load_values(const Args<D>& A, SmemTile<float> dst, int b, int h, int t0, int L) {
  for (int i = threadIdx.x; i < A.C * A.E; i += blockDim.x) {
    const int r = i / A.E, c = i % A.E;
    dst.at(r, c) = r >= L ? 0.f : c < A.e ? to_f32(A.v[A.row(b, h, t0 + r, A.e) + c]) : 1.f;
  }
}

// G = d[N | Z]: normalising, dN = dy / den and dZ = -(dy . y) / den; else dN = dy, dZ = 0; the
// sums variant reads G itself.
template <typename D>
__device__ void load_output_grad(const Args<D>& A, SmemTile<float> g, int b, int h, int t0, int L) {
  for (int i = threadIdx.x; i < A.C * A.E; i += blockDim.x) {
    const int r = i / A.E, c = i % A.E;
    float x = 0.f;
    if (r < L && A.dsums) {
      x = A.dsums[A.row(b, h, t0 + r, A.E) + c];
    } else if (r < L) {
      const int64_t at = A.row(b, h, t0 + r, A.e);
      const float inv = A.normalize ? 1.f / A.den[(static_cast<int64_t>(b) * A.T + t0 + r) * A.H + h] : 1.f;
      if (c < A.e) {
        x = to_f32(A.dy[at + c]) * inv;
      } else if (A.normalize) {
        float dot = 0.f;
        for (int j = 0; j < A.e; ++j) dot = fmaf(to_f32(A.dy[at + j]), to_f32(A.y[at + j]), dot);
        x = -dot * inv;
      }
    }
    g.at(r, c) = x;
  }
}

// phi of the chunk's C rows of x ([C, f]) into phi ([C, D']).
__device__ void features(SmemTile<float> phi, SmemTile<float> x, int C, int f, int Dp, const Scale& s) {
  for (int i = threadIdx.x; i < C * Dp; i += blockDim.x) {
    const int r = i / Dp, p = i % Dp;
    phi.at(r, p) = feature_value(feature_of(p, f), &x.at(r, 0), s);
  }
}

// dx (= or +=) (d phi / dx)^T u for every row: u ([C, D']) is the gradient of phi(x).
__device__ void feature_grad(SmemTile<float> dx, SmemTile<float> x, SmemTile<float> u, int C, int f, const Scale& s) {
  for (int i = threadIdx.x; i < C * f; i += blockDim.x) {
    const int r = i / f, a = i % f;
    float acc = u.at(r, 1 + a) * s.c1;
    for (int b = 0; b < f; ++b) {
      const int lo = min(a, b), hi = max(a, b);
      const float w = u.at(r, pair_index(lo, hi, f));
      acc = b == a ? fmaf(2.f * s.c_diag * w, x.at(r, a), acc) : fmaf(s.c2 * w, x.at(r, b), acc);
    }
    dx.at(r, a) += acc;
  }
}

// The score entry s = q_r . k_c / sqrt(f).
__device__ __forceinline__ float score(SmemTile<float> q, SmemTile<float> k, int r, int c, int f, float inv_sqrt_f) {
  float dot = 0.f;
  for (int j = 0; j < f; ++j) dot = fmaf(q.at(r, j), k.at(c, j), dot);
  return dot * inv_sqrt_f;
}

// a = A(Q, K) = 1 + s + s^2 / 2 on the causal entries of the chunk's L rows, else 0.
__device__ void taylor_scores(SmemTile<float> a, SmemTile<float> q, SmemTile<float> k, int C, int L, int f,
                              const Scale& sc) {
  for (int i = threadIdx.x; i < C * C; i += blockDim.x) {
    const int r = i / C, c = i % C;
    float x = 0.f;
    if (c <= r && r < L) {
      const float s = score(q, k, r, c, f, sc.c2);
      x = 1.f + s + 0.5f * s * s;
    }
    a.at(r, c) = x;
  }
}

// a = ds = (G V'^T) o (1 + s) / sqrt(f) on the causal entries, else 0.
__device__ void score_grads(SmemTile<float> a, SmemTile<float> g, SmemTile<float> v, SmemTile<float> q,
                            SmemTile<float> k, int C, int L, int f, int E, const Scale& sc) {
  for (int i = threadIdx.x; i < C * C; i += blockDim.x) {
    const int r = i / C, c = i % C;
    float x = 0.f;
    if (c <= r && r < L) {
      float da = 0.f;
      for (int j = 0; j < E; ++j) da = fmaf(g.at(r, j), v.at(c, j), da);
      x = da * (1.f + score(q, k, r, c, f, sc.c2)) * sc.c2;
    }
    a.at(r, c) = x;
  }
}

template <typename D>
__device__ void load_state(const Args<D>& A, SmemTile<float> st, int bh) {
  for (int i = threadIdx.x; i < A.Dp * A.E; i += blockDim.x)
    st.at(i / A.E, i % A.E) = A.state_in ? A.state_in[static_cast<int64_t>(bh) * A.Dp * A.E + i] : 0.f;
}
template <typename D>
__device__ void store_state(const Args<D>& A, SmemTile<float> st, int bh) {
  if (!A.state_out) return;
  for (int i = threadIdx.x; i < A.Dp * A.E; i += blockDim.x)
    A.state_out[static_cast<int64_t>(bh) * A.Dp * A.E + i] = st.at(i / A.E, i % A.E);
}

template <typename D>
__device__ void store_rows(D* dst, const Args<D>& A, SmemTile<float> src, int b, int h, int t0, int L, int width) {
  if (!dst) return;
  for (int i = threadIdx.x; i < L * width; i += blockDim.x) {
    const int r = i / width, c = i % width;
    dst[A.row(b, h, t0 + r, width) + c] = from_f32<D>(src.at(r, c));
  }
}

// The chunk's rows [t0, t0 + L) of q, k and V' (and G, for the backward) into their tiles.
template <typename D>
__device__ void load_chunk(const Args<D>& A, const Smem& sm, int b, int h, int t0, int L, bool with_output_grad) {
  load_rows(sm.q, A.q + A.row(b, h, t0, A.f), int64_t{A.H} * A.f, A.C, L, A.f);
  load_rows(sm.k, A.k + A.row(b, h, t0, A.f), int64_t{A.H} * A.f, A.C, L, A.f);
  load_values(A, sm.v, b, h, t0, L);
  if (with_output_grad) load_output_grad(A, sm.g, b, h, t0, L);
}

template <typename D> __global__ void __launch_bounds__(kThreads) forward_kernel(Args<D> A) {
  const Smem sm = smem_layout<Smem>(A.C, A.f, A.Dp, A.E);
  const int bh = blockIdx.x, b = bh / A.H, h = bh % A.H, C = A.C;
  const Scale sc = A.scale;
  load_state(A, sm.state, bh);
  for (int t0 = 0; t0 < A.T; t0 += C) {
    const int L = min(C, A.T - t0);
    __syncthreads();  // the previous chunk is done with every tile
    load_chunk(A, sm, b, h, t0, L, false);
    __syncthreads();
    taylor_scores(sm.a, sm.q, sm.k, C, L, A.f, sc);
    features(sm.phi, sm.q, C, A.f, A.Dp, sc);
    __syncthreads();
    tile_gemm<false, false>(sm.g, sm.a, sm.v, C, A.E, C, false);  // A V'
    tile_gemm<false, false>(sm.g, sm.phi, sm.state, C, A.E, A.Dp, true);  // + P(Q) S (same owner per element)
    __syncthreads();
    if (A.sums_out) {  // the sums variant: [N | Z] as it is
      for (int i = threadIdx.x; i < L * A.E; i += blockDim.x)
        A.sums_out[A.row(b, h, t0 + i / A.E, A.E) + i % A.E] = sm.g.at(i / A.E, i % A.E);
    } else {
      for (int i = threadIdx.x; i < L * A.e; i += blockDim.x) {
        const int r = i / A.e, c = i % A.e;
        const float z = sm.g.at(r, A.e) + A.eps;
        A.y_out[A.row(b, h, t0 + r, A.e) + c] = from_f32<D>(A.normalize ? sm.g.at(r, c) / z : sm.g.at(r, c));
        if (A.normalize && c == 0) A.den_out[(static_cast<int64_t>(b) * A.T + t0 + r) * A.H + h] = z;
      }
    }
    features(sm.phi, sm.k, C, A.f, A.Dp, sc);
    __syncthreads();
    tile_gemm<true, false>(sm.state, sm.phi, sm.v, A.Dp, A.E, C, true);  // S += P(K)^T V'
  }
  __syncthreads();
  store_state(A, sm.state, bh);
}

template <typename D> __global__ void __launch_bounds__(kThreads) dq_kernel(Args<D> A) {
  const Smem sm = smem_layout<Smem>(A.C, A.f, A.Dp, A.E);
  const int bh = blockIdx.x, b = bh / A.H, h = bh % A.H, C = A.C;
  const Scale sc = A.scale;
  load_state(A, sm.state, bh);
  for (int t0 = 0; t0 < A.T; t0 += C) {
    const int L = min(C, A.T - t0);
    __syncthreads();
    load_chunk(A, sm, b, h, t0, L, true);
    __syncthreads();
    score_grads(sm.a, sm.g, sm.v, sm.q, sm.k, C, L, A.f, A.E, sc);
    tile_gemm<false, true>(sm.phi, sm.g, sm.state, C, A.Dp, A.E, false);  // u = G S^T
    __syncthreads();
    tile_gemm<false, false>(sm.dx, sm.a, sm.k, C, A.f, C, false);  // ds K
    __syncthreads();
    feature_grad(sm.dx, sm.q, sm.phi, C, A.f, sc);
    __syncthreads();
    store_rows(A.dq, A, sm.dx, b, h, t0, L, A.f);
    features(sm.phi, sm.k, C, A.f, A.Dp, sc);
    __syncthreads();
    tile_gemm<true, false>(sm.state, sm.phi, sm.v, A.Dp, A.E, C, true);  // S += P(K)^T V'
  }
}

template <typename D> __global__ void __launch_bounds__(kThreads) dkv_kernel(Args<D> A) {
  const Smem sm = smem_layout<Smem>(A.C, A.f, A.Dp, A.E);
  const int bh = blockIdx.x, b = bh / A.H, h = bh % A.H, C = A.C;
  const Scale sc = A.scale;
  load_state(A, sm.state, bh);  // R = dfinal
  const int chunks = (A.T + C - 1) / C;
  for (int j = chunks - 1; j >= 0; --j) {
    const int t0 = j * C, L = min(C, A.T - t0);
    __syncthreads();
    load_chunk(A, sm, b, h, t0, L, true);
    __syncthreads();
    taylor_scores(sm.a, sm.q, sm.k, C, L, A.f, sc);
    features(sm.phi, sm.k, C, A.f, A.Dp, sc);
    __syncthreads();
    if (A.dv)  // dV' = A^T G + P(K) R, one sum per element, straight to memory
      for (int i = threadIdx.x; i < L * A.e; i += blockDim.x) {
        const int r = i / A.e, c = i % A.e;
        float acc = 0.f;
        for (int t = r; t < L; ++t) acc = fmaf(sm.a.at(t, r), sm.g.at(t, c), acc);
        for (int p = 0; p < A.Dp; ++p) acc = fmaf(sm.phi.at(r, p), sm.state.at(p, c), acc);
        A.dv[A.row(b, h, t0 + r, A.e) + c] = from_f32<D>(acc);
      }
    __syncthreads();
    if (A.dk) {
      score_grads(sm.a, sm.g, sm.v, sm.q, sm.k, C, L, A.f, A.E, sc);
      tile_gemm<false, true>(sm.phi, sm.v, sm.state, C, A.Dp, A.E, false);  // u = V' R^T
      __syncthreads();
      tile_gemm<true, false>(sm.dx, sm.a, sm.q, C, A.f, C, false);  // ds^T Q
      __syncthreads();
      feature_grad(sm.dx, sm.k, sm.phi, C, A.f, sc);
      __syncthreads();
      store_rows(A.dk, A, sm.dx, b, h, t0, L, A.f);
    }
    features(sm.phi, sm.q, C, A.f, A.Dp, sc);
    __syncthreads();
    tile_gemm<true, false>(sm.state, sm.phi, sm.g, A.Dp, A.E, C, true);  // R += P(Q)^T G
  }
  __syncthreads();
  store_state(A, sm.state, bh);
}

void check_dims(const HeadShape& s) {
  EAT_CHECK(s.d >= 1 && s.d <= kMaxFeature && s.e >= 1 && s.e <= kMaxValue, kOp, ": feature dim f = ", s.d,
            " and value width e = ", s.e, " must be at most ", kMaxFeature, " and ", kMaxValue);
  EAT_CHECK(s.T < (int64_t{1} << 30) && s.B * s.H < (int64_t{1} << 31), kOp, ": B = ", s.B, ", T = ", s.T,
            ", H = ", s.H, " exceed the kernel's index range");
}

template <typename D> Args<D> make_args(const HeadShape& s, const TaylorKernelArgs& a, const D* q, const D* k, const D* v) {
  check_dims(s);
  Args<D> A{};
  A.q = q;
  A.k = k;
  A.v = v;
  A.B = static_cast<int>(s.B);
  A.T = static_cast<int>(s.T);
  A.H = static_cast<int>(s.H);
  A.f = static_cast<int>(s.d);
  A.e = static_cast<int>(s.e);
  A.Dp = static_cast<int>(taylor_feature_dim(s.d));
  A.E = A.e + 1;
  A.normalize = a.normalize;
  A.eps = static_cast<float>(a.eps);
  A.scale = scale_for(s.d);
  return A;
}

// The largest chunk whose layout fits the budget; the smallest when none does (its launch then
// fails with the bytes it needs).
int chunk_for(int f, int Dp, int E) {
  for (int C : kChunks)
    if (smem_fits<Smem>(C, f, Dp, E)) return C;
  return kChunks[std::size(kChunks) - 1];
}

template <typename D> void launch(void (*kernel)(Args<D>), Args<D> A) {
  if (static_cast<int64_t>(A.B) * A.H == 0) return;
  A.C = chunk_for(A.f, A.Dp, A.E);
  const size_t smem = prepare_smem<Smem>(kernel, kOp, A.C, A.f, A.Dp, A.E);
  kernel<<<static_cast<unsigned>(A.B * A.H), kThreads, smem, compute_stream()>>>(A);
  EAT_CUDA_CHECK_LAUNCH();
}

// The forward sweep from s0 (may be null): y and the denominators, or the sums in their place;
// the final state when wanted.
template <typename D>
void forward_sweep(const HeadShape& s, const TaylorKernelArgs& a, const D* q, const D* k, const D* v, const float* s0,
                   D* y, float* denominator, float* final_state, float* sums) {
  Args<D> A = make_args<D>(s, a, q, k, v);
  A.state_in = s0;
  A.y_out = y;
  A.den_out = denominator;
  A.state_out = final_state;
  A.sums_out = sums;
  launch(forward_kernel<D>, A);
}

// The dq sweep from s0 and the dk, dv sweep from dfinal (ending at ds0), each when wanted; A holds
// the inputs and the output gradient (dy or, for the sums, dsums).
template <typename D>
void backward_sweeps(const Args<D>& A, const float* s0, const float* dfinal, D* dq, D* dk, D* dv, float* ds0) {
  if (dq) {
    Args<D> P = A;
    P.state_in = s0;
    P.dq = dq;
    launch(dq_kernel<D>, P);
  }
  if (dk || dv || ds0) {
    Args<D> P = A;
    P.state_in = dfinal;
    P.state_out = ds0;
    P.dk = dk;
    P.dv = dv;
    launch(dkv_kernel<D>, P);
  }
}

}  // namespace

template <typename T>
void taylor_chunked_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                            const float* s0, T* y, float* final_state, RowStat* denominator) {
  forward_sweep<device_t<T>>(s, a, dev(q), dev(k), dev(v), s0, dev(y), denominator, final_state, nullptr);
}

template <typename T>
void taylor_chunked_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                             const float* s0, const T* y, const RowStat* denominator, const T* dy,
                             const float* dfinal, T* dq, T* dk, T* dv, float* ds0) {
  using D = device_t<T>;
  Args<D> A = make_args<D>(s, a, dev(q), dev(k), dev(v));
  A.y = dev(y);
  A.den = denominator;
  A.dy = dev(dy);
  backward_sweeps(A, s0, dfinal, dev(dq), dev(dk), dev(dv), ds0);
}

template <typename T>
void taylor_chunked_sums_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                                 float* sums) {
  forward_sweep<device_t<T>>(s, a, dev(q), dev(k), dev(v), nullptr, nullptr, nullptr, nullptr, sums);
}

template <typename T>
void taylor_chunked_sums_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                                  const float* dsums, T* dq, T* dk, T* dv) {
  using D = device_t<T>;
  Args<D> A = make_args<D>(s, a, dev(q), dev(k), dev(v));
  A.dsums = dsums;
  backward_sweeps<D>(A, nullptr, nullptr, dev(dq), dev(dk), dev(dv), nullptr);
}

EAT_TAYLOR_INSTANTIATE(chunked, float)
EAT_TAYLOR_INSTANTIATE(chunked, bf16)
EAT_TAYLOR_SUMS_INSTANTIATE(float)
EAT_TAYLOR_SUMS_INSTANTIATE(bf16)

}  // namespace eat::cuda
