// RMSNorm / SimpleRMSNorm (also times a gate) and L2 normalisation over rows, forward and backward.
// Row kernels: one block per row; the sum of squares (forward) and the row dot product
// (backward) are block reductions in f32, and threads stride over the row.
// RMSNorm's weight gradient is a column sum over rows, done in two deterministic stages: each
// block of rms_norm_dw_partial_kernel owns (a column tile, a fixed chunk of rows) and sums its
// chunk in row order; column_sums_finish then adds the chunks in order. No float atomics.
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/column_sums.h"
#include "kernels/norms.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

constexpr int kColumnTile = 256;

template <typename D>
__device__ __forceinline__ float weight_at(const D* w, int64_t j) {
  return w ? to_f32(w[j]) : 1.0f;
}

// y = x r * w (a weight per column) or x r * gate (one of x's shape), either or neither given.
template <typename D>
__global__ void rms_norm_forward_kernel(const D* x, const D* w, const D* gate, D* y, float* r, int64_t cols, float eps) {
  const int64_t base = blockIdx.x * cols;
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float v = to_f32(x[base + j]);
    ss += v * v;
  }
  const float ri = 1.0f / sqrtf(block_sum(ss) / static_cast<float>(cols) + eps);
  if (threadIdx.x == 0) r[blockIdx.x] = ri;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    y[base + j] = from_f32<D>(to_f32(x[base + j]) * ri * weight_at(w, j) * (gate ? to_f32(gate[base + j]) : 1.0f));
}

template <typename D>
__global__ void rms_norm_dx_kernel(const D* x, const D* w, const float* r, const D* dy, D* dx, int64_t cols,
                                   bool accumulate) {
  const int64_t base = blockIdx.x * cols;
  const float ri = r[blockIdx.x];
  float dot = 0.0f;  // sum over the row of (dy * w) * xhat
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dot += to_f32(dy[base + j]) * weight_at(w, j) * to_f32(x[base + j]) * ri;
  dot = block_sum(dot) / static_cast<float>(cols);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const D g = from_f32<D>(ri * (to_f32(dy[base + j]) * weight_at(w, j) - to_f32(x[base + j]) * ri * dot));
    // Added as add's kernel adds the two stored values.
    dx[base + j] = accumulate ? from_f32<D>(to_f32(dx[base + j]) + to_f32(g)) : g;
  }
}

// blockIdx.x: a tile of kColumnTile columns; blockIdx.y: a chunk of `chunk_rows` rows.
template <typename D>
__global__ void rms_norm_dw_partial_kernel(const D* x, const float* r, const D* dy, float* partial, int64_t rows,
                                           int64_t cols, int64_t chunk_rows) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(kColumnTile) + threadIdx.x;
  if (c >= cols) return;
  const int64_t begin = blockIdx.y * chunk_rows;
  const int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  float s = 0.0f;
  for (int64_t i = begin; i < end; ++i) s += to_f32(dy[i * cols + c]) * (to_f32(x[i * cols + c]) * r[i]);
  partial[blockIdx.y * cols + c] = s;
}

// SimpleRMSNorm times a gate's backward: both gradients are per element, so one row kernel gives
// dx and dgate.
template <typename D>
__global__ void rms_norm_gate_backward_kernel(const D* x, const D* gate, const float* r, const D* dy, D* dx, D* dgate,
                                              int64_t cols, bool accumulate) {
  const int64_t base = blockIdx.x * cols;
  const float ri = r[blockIdx.x];
  if (dx) {
    float dot = 0.0f;  // sum over the row of (dy * gate) * xhat
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
      dot += to_f32(dy[base + j]) * to_f32(gate[base + j]) * to_f32(x[base + j]) * ri;
    dot = block_sum(dot) / static_cast<float>(cols);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float g = to_f32(dy[base + j]) * to_f32(gate[base + j]);
      const D d = from_f32<D>(ri * (g - to_f32(x[base + j]) * ri * dot));
      dx[base + j] = accumulate ? from_f32<D>(to_f32(dx[base + j]) + to_f32(d)) : d;
    }
  }
  if (dgate)
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
      dgate[base + j] = from_f32<D>(to_f32(dy[base + j]) * to_f32(x[base + j]) * ri);
}

template <typename D>
__global__ void l2_normalize_forward_kernel(const D* x, D* y, float* norm, int64_t cols, float eps) {
  const int64_t base = blockIdx.x * cols;
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float v = to_f32(x[base + j]);
    ss += v * v;
  }
  const float n = sqrtf(block_sum(ss));
  if (threadIdx.x == 0) norm[blockIdx.x] = n;
  const float inv = 1.0f / fmaxf(n, eps);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) y[base + j] = from_f32<D>(to_f32(x[base + j]) * inv);
}

template <typename D>
__global__ void l2_normalize_backward_kernel(const D* x, const float* norm, const D* dy, D* dx, int64_t cols, float eps) {
  const int64_t base = blockIdx.x * cols;
  const float n = norm[blockIdx.x];
  if (n <= eps) {  // the denominator is the constant eps: a plain scaling (uniform over the block)
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dx[base + j] = from_f32<D>(to_f32(dy[base + j]) / eps);
    return;
  }
  const float inv = 1.0f / n;
  float dot = 0.0f;  // <dy, y>
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dot += to_f32(dy[base + j]) * to_f32(x[base + j]) * inv;
  dot = block_sum(dot);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dx[base + j] = from_f32<D>((to_f32(dy[base + j]) - to_f32(x[base + j]) * inv * dot) * inv);
}

}  // namespace

template <typename T>
void rms_norm_forward(const T* x, const T* w, T* y, float* r, int64_t rows, int64_t cols, double eps) {
  const cudaStream_t stream = compute_stream();
  if (rows == 0 || cols == 0) return;
  rms_norm_forward_kernel<<<static_cast<unsigned>(rows), row_block(cols), 0, stream>>>(
      dev(x), dev(w), static_cast<const device_t<T>*>(nullptr), dev(y), r, cols, static_cast<float>(eps));
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void rms_norm_backward(const T* x, const T* w, const float* r, const T* dy, T* dx, T* dw, int64_t rows, int64_t cols,
                       bool accumulate_dx) {
  const cudaStream_t stream = compute_stream();
  if (rows == 0 || cols == 0) return;
  if (dx) {
    rms_norm_dx_kernel<<<static_cast<unsigned>(rows), row_block(cols), 0, stream>>>(dev(x), dev(w), r, dev(dy), dev(dx),
                                                                                     cols, accumulate_dx);
    EAT_CUDA_CHECK_LAUNCH();
  }
  if (dw) {
    const ColumnPartials partial(rows, cols);
    const dim3 grid(static_cast<unsigned>((cols + kColumnTile - 1) / kColumnTile), static_cast<unsigned>(partial.chunks()));
    rms_norm_dw_partial_kernel<<<grid, kColumnTile, 0, stream>>>(dev(x), r, dev(dy), partial.data(), rows, cols,
                                                                 column_chunk_rows(rows));
    EAT_CUDA_CHECK_LAUNCH();
    column_sums_finish<T>(partial.data(), partial.chunks(), cols, dw);
  }
}

template <typename T>
void rms_norm_gate_forward(const T* x, const T* gate, T* y, float* r, int64_t rows, int64_t cols, double eps) {
  const cudaStream_t stream = compute_stream();
  if (rows == 0 || cols == 0) return;
  rms_norm_forward_kernel<<<static_cast<unsigned>(rows), row_block(cols), 0, stream>>>(
      dev(x), static_cast<const device_t<T>*>(nullptr), dev(gate), dev(y), r, cols, static_cast<float>(eps));
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void rms_norm_gate_backward(const T* x, const T* gate, const float* r, const T* dy, T* dx, T* dgate, int64_t rows,
                            int64_t cols, bool accumulate_dx) {
  const cudaStream_t stream = compute_stream();
  if (rows == 0 || cols == 0 || (!dx && !dgate)) return;
  rms_norm_gate_backward_kernel<<<static_cast<unsigned>(rows), row_block(cols), 0, stream>>>(
      dev(x), dev(gate), r, dev(dy), dev(dx), dev(dgate), cols, accumulate_dx);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void l2_normalize_forward(const T* x, T* y, float* norm, int64_t rows, int64_t cols, double eps) {
  const cudaStream_t stream = compute_stream();
  if (rows == 0 || cols == 0) return;
  l2_normalize_forward_kernel<<<static_cast<unsigned>(rows), row_block(cols), 0, stream>>>(dev(x), dev(y), norm, cols,
                                                                                            static_cast<float>(eps));
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void l2_normalize_backward(const T* x, const float* norm, const T* dy, T* dx, int64_t rows, int64_t cols, double eps) {
  const cudaStream_t stream = compute_stream();
  if (rows == 0 || cols == 0) return;
  l2_normalize_backward_kernel<<<static_cast<unsigned>(rows), row_block(cols), 0, stream>>>(dev(x), norm, dev(dy), dev(dx),
                                                                                             cols, static_cast<float>(eps));
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                                               \
  template void rms_norm_forward<T>(const T*, const T*, T*, float*, int64_t, int64_t, double);           \
  template void rms_norm_backward<T>(const T*, const T*, const float*, const T*, T*, T*, int64_t, int64_t, bool); \
  template void rms_norm_gate_forward<T>(const T*, const T*, T*, float*, int64_t, int64_t, double);      \
  template void rms_norm_gate_backward<T>(const T*, const T*, const float*, const T*, T*, T*, int64_t, int64_t, bool); \
  template void l2_normalize_forward<T>(const T*, T*, float*, int64_t, int64_t, double);                 \
  template void l2_normalize_backward<T>(const T*, const float*, const T*, T*, int64_t, int64_t, double);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
