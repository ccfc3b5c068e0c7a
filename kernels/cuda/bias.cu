#include <algorithm>

#include "kernels/matmul.h"
#include "runtime/cuda/check.h"
#include "kernels/cuda/column_sums.h"
#include "runtime/cuda/memory.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

constexpr int kTileCols = 32;        // one warp across 32 adjacent columns: coalesced rows
constexpr int kTileRows = 8;         // warps per block, each walking every 8th row of the chunk
constexpr int64_t kChunkRows = 256;  // rows summed by one block before the second pass
constexpr int64_t kMaxChunks = 4096;

template <typename D>
__global__ void add_row_vector_kernel(D* __restrict__ out, const D* __restrict__ bias, long long rows, long long cols) {
  const long long n = rows * cols;
  EAT_GRID_STRIDE(i, n)
    out[i] = from_f32<D>(to_f32(out[i]) + to_f32(bias[i % cols]));
}

// Pass 1: partial[chunk, j] = sum of x[i, j] over the chunk's rows, block (kTileCols, kTileRows).
template <typename D>
__global__ void column_partials_kernel(const D* __restrict__ x, float* __restrict__ partial, long long rows,
                                       long long cols, long long chunk_rows) {
  __shared__ float sums[kTileRows][kTileCols];
  const long long j = static_cast<long long>(blockIdx.x) * kTileCols + threadIdx.x;
  const long long begin = static_cast<long long>(blockIdx.y) * chunk_rows;
  const long long end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  float acc = 0.0f;
  if (j < cols)
    for (long long i = begin + threadIdx.y; i < end; i += kTileRows) acc += to_f32(x[i * cols + j]);
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float total = 0.0f;
    for (int r = 0; r < kTileRows; ++r) total += sums[r][threadIdx.x];
    partial[static_cast<long long>(blockIdx.y) * cols + j] = total;
  }
}

}  // namespace

template <typename T>
void add_row_vector(T* out, const T* bias, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  add_row_vector_kernel<<<grid_for(rows * cols), 256, 0, compute_stream()>>>(dev(out), dev(bias), rows, cols);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void column_sums(const T* x, T* out, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  const int64_t chunks = std::max<int64_t>(1, std::min(kMaxChunks, (rows + kChunkRows - 1) / kChunkRows));
  const int64_t chunk_rows = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
  // Freed right after the launches: the allocator reuses it only for work queued after them.
  float* partial = static_cast<float*>(device_alloc(static_cast<size_t>(chunks * cols) * sizeof(float)));
  const dim3 block(kTileCols, kTileRows);
  const dim3 grid(static_cast<unsigned>((cols + kTileCols - 1) / kTileCols), static_cast<unsigned>(chunks));
  column_partials_kernel<<<grid, block, 0, compute_stream()>>>(dev(x), partial, rows, cols, chunk_rows);
  EAT_CUDA_CHECK_LAUNCH();
  column_sums_finish<T>(partial, chunks, cols, out);
  device_free(partial);
}

template void add_row_vector<float>(float*, const float*, int64_t, int64_t);
template void add_row_vector<eat::bf16>(eat::bf16*, const eat::bf16*, int64_t, int64_t);
template void column_sums<float>(const float*, float*, int64_t, int64_t);
template void column_sums<eat::bf16>(const eat::bf16*, eat::bf16*, int64_t, int64_t);

}  // namespace eat::cuda
