// Second stage of the deterministic column sums: one thread per column adds the per-chunk partial
// sums in chunk order (coalesced: neighbouring threads read neighbouring columns).
#include "runtime/cuda/check.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/column_sums.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

int64_t column_chunk_rows(int64_t rows) {
  // At most 128 chunks; at least 16 rows per chunk so small inputs do not waste partial slots.
  const int64_t per = (rows + 127) / 128;
  return per < 16 ? 16 : per;
}

int64_t column_chunks(int64_t rows) {
  const int64_t per = column_chunk_rows(rows);
  const int64_t chunks = (rows + per - 1) / per;
  return chunks < 1 ? 1 : chunks;
}

ColumnPartials::ColumnPartials(int64_t rows, int64_t cols)
    : chunks_(column_chunks(rows)),
      data_(static_cast<float*>(device_alloc(static_cast<size_t>(chunks_ * cols) * sizeof(float)))) {}

ColumnPartials::~ColumnPartials() { device_free(data_); }

namespace {

template <typename D>
__global__ void column_sums_finish_kernel(const float* partial, int64_t chunks, int64_t cols, D* out) {
  EAT_GRID_STRIDE(c, cols) {
    float s = 0.0f;
    for (int64_t k = 0; k < chunks; ++k) s += partial[k * cols + c];
    out[c] = from_f32<D>(s);
  }
}

}  // namespace

template <typename T>
void column_sums_finish(const float* partial, int64_t chunks, int64_t cols, T* out) {
  if (cols == 0) return;
  column_sums_finish_kernel<<<grid_for(cols), 256, 0, compute_stream()>>>(partial, chunks, cols, dev(out));
  EAT_CUDA_CHECK_LAUNCH();
}

template void column_sums_finish<float>(const float*, int64_t, int64_t, float*);
template void column_sums_finish<eat::bf16>(const float*, int64_t, int64_t, eat::bf16*);

}  // namespace eat::cuda
