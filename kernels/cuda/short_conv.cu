// Causal depthwise short convolution, forward and backward.
// y and dx: one thread per (b, t, c) in a grid-stride loop, adding the k taps in tap order (as
// the CPU does); neighbouring threads are neighbouring channels, so reads are coalesced.
// dw [C, k] and dbias [C] are sums over all B*T positions: stage 1 gives block (column tile,
// row chunk) a fixed chunk of positions summed in order into partial[chunk, column], and
// column_sums_finish adds the chunks in order. Deterministic, no float atomics.
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/short_conv.h"

namespace eat::cuda {

namespace {

constexpr int kColumnTile = 256;

template <typename D>
__global__ void short_conv_forward_kernel(const D* x, const D* w, const D* bias, D* y, int64_t T_, int64_t C, int64_t k,
                                          int64_t n) {
  EAT_GRID_STRIDE(e, n) {
    const int64_t c = e % C, row = e / C, t = row % T_;  // row = b * T + t
    float acc = bias ? to_f32(bias[c]) : 0.0f;
    for (int64_t i = k - 1 - t > 0 ? k - 1 - t : 0; i < k; ++i)
      acc += to_f32(w[c * k + i]) * to_f32(x[(row - k + 1 + i) * C + c]);
    y[e] = from_f32<D>(acc);
  }
}

// dx[s] = sum_i w[i] dy[s + k - 1 - i] over taps with s + k - 1 - i < T.
template <typename D>
__global__ void short_conv_dx_kernel(const D* w, const D* dy, D* dx, int64_t T_, int64_t C, int64_t k, int64_t n) {
  EAT_GRID_STRIDE(e, n) {
    const int64_t c = e % C, row = e / C, s = row % T_;
    float acc = 0.0f;
    for (int64_t i = 0; i < k; ++i) {
      if (s + k - 1 - i >= T_) continue;
      acc += to_f32(w[c * k + i]) * to_f32(dy[(row + k - 1 - i) * C + c]);
    }
    dx[e] = from_f32<D>(acc);
  }
}

// Column q of dw is (c, i) = (q / k, q % k): sum over positions of dy[t, c] * x[t - k + 1 + i, c].
// blockIdx.x: a tile of columns; blockIdx.y: a chunk of positions.
template <typename D>
__global__ void short_conv_dw_partial_kernel(const D* x, const D* dy, float* partial, int64_t rows, int64_t T_, int64_t C,
                                             int64_t k, int64_t chunk_rows) {
  const int64_t q = blockIdx.x * static_cast<int64_t>(kColumnTile) + threadIdx.x;
  if (q >= C * k) return;
  const int64_t c = q / k, i = q % k;
  const int64_t begin = blockIdx.y * chunk_rows, end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  float s = 0.0f;
  for (int64_t r = begin; r < end; ++r)
    if (r % T_ >= k - 1 - i) s += to_f32(dy[r * C + c]) * to_f32(x[(r - k + 1 + i) * C + c]);
  partial[blockIdx.y * C * k + q] = s;
}

template <typename D>
__global__ void short_conv_dbias_partial_kernel(const D* dy, float* partial, int64_t rows, int64_t C, int64_t chunk_rows) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(kColumnTile) + threadIdx.x;
  if (c >= C) return;
  const int64_t begin = blockIdx.y * chunk_rows, end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  float s = 0.0f;
  for (int64_t r = begin; r < end; ++r) s += to_f32(dy[r * C + c]);
  partial[blockIdx.y * C + c] = s;
}

dim3 column_grid(int64_t cols, int64_t chunks) {
  return dim3(static_cast<unsigned>((cols + kColumnTile - 1) / kColumnTile), static_cast<unsigned>(chunks));
}

}  // namespace

template <typename T>
void short_conv_forward(const T* x, const T* w, const T* bias, T* y, int64_t B, int64_t T_, int64_t C, int64_t k) {
  const cudaStream_t stream = compute_stream();
  const int64_t n = B * T_ * C;
  if (n == 0) return;
  short_conv_forward_kernel<<<grid_for(n), 256, 0, stream>>>(dev(x), dev(w), dev(bias), dev(y), T_, C, k, n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void short_conv_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* dbias, int64_t B, int64_t T_, int64_t C,
                         int64_t k) {
  const cudaStream_t stream = compute_stream();
  const int64_t rows = B * T_, n = rows * C;
  if (n == 0) return;
  if (dx) {
    short_conv_dx_kernel<<<grid_for(n), 256, 0, stream>>>(dev(w), dev(dy), dev(dx), T_, C, k, n);
    EAT_CUDA_CHECK_LAUNCH();
  }
  if (!dw && !dbias) return;
  const int64_t chunk_rows = column_chunk_rows(rows);
  // dw and dbias share the partial sums: on one stream the finish of the first has read them
  // before the second overwrites them.
  const ColumnPartials partials(rows, C * k);
  float* partial = partials.data();
  const int64_t chunks = partials.chunks();
  if (dw) {
    short_conv_dw_partial_kernel<<<column_grid(C * k, chunks), kColumnTile, 0, stream>>>(dev(x), dev(dy), partial, rows, T_,
                                                                                          C, k, chunk_rows);
    EAT_CUDA_CHECK_LAUNCH();
    column_sums_finish<T>(partial, chunks, C * k, dw);
  }
  if (dbias) {
    short_conv_dbias_partial_kernel<<<column_grid(C, chunks), kColumnTile, 0, stream>>>(dev(dy), partial, rows, C,
                                                                                         chunk_rows);
    EAT_CUDA_CHECK_LAUNCH();
    column_sums_finish<T>(partial, chunks, C, dbias);
  }
}

#define EAT_INSTANTIATE(T)                                                                                          \
  template void short_conv_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t);      \
  template void short_conv_backward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
