// act(a) * b and its gradients, act = SiLU or identity: one thread per output element in a
// grid-stride loop; the backward recomputes the sigmoid instead of saving it. Output element i of
// [rows, n] reads a and b at (i / n) * pitch + i % n: pitch n for separate tensors (rows 1), 2n
// for the two halves of one joined tensor.
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/glu_gate.h"
#include "kernels/matmul.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

template <typename D>
__global__ void glu_gate_forward_kernel(bool silu, const D* a, const D* b, int64_t pitch, D* y, int64_t total,
                                        int64_t n) {
  EAT_GRID_STRIDE(i, total) {
    const int64_t k = (i / n) * pitch + i % n;
    const float x = to_f32(a[k]);
    y[i] = from_f32<D>((silu ? x * sigmoid_f32(x) : x) * to_f32(b[k]));
  }
}

template <typename D>
__global__ void glu_gate_backward_kernel(bool silu, const D* a, const D* b, int64_t pitch, const D* dy, D* da, D* db,
                                         int64_t total, int64_t n) {
  EAT_GRID_STRIDE(i, total) {
    const int64_t k = (i / n) * pitch + i % n;
    const float x = to_f32(a[k]), g = to_f32(dy[i]);
    float act = x, dact = 1.0f;
    if (silu) {
      const float s = sigmoid_f32(x);
      act = x * s;
      dact = silu_slope_f32(x, s);
    }
    if (da) da[k] = from_f32<D>(g * to_f32(b[k]) * dact);
    if (db) db[k] = from_f32<D>(g * act);
  }
}

template <typename T>
void forward_pitched(bool silu, const T* a, const T* b, int64_t pitch, T* y, int64_t rows, int64_t n) {
  const int64_t total = rows * n;
  if (total == 0) return;
  glu_gate_forward_kernel<<<grid_for(total), 256, 0, compute_stream()>>>(silu, dev(a), dev(b), pitch, dev(y), total, n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward_pitched(bool silu, const T* a, const T* b, int64_t pitch, const T* dy, T* da, T* db, int64_t rows,
                      int64_t n) {
  const int64_t total = rows * n;
  if (total == 0 || (!da && !db)) return;
  glu_gate_backward_kernel<<<grid_for(total), 256, 0, compute_stream()>>>(silu, dev(a), dev(b), pitch, dev(dy),
                                                                          dev(da), dev(db), total, n);
  EAT_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T> void glu_gate_forward(bool silu, const T* a, const T* b, T* y, int64_t n) {
  forward_pitched(silu, a, b, n, y, 1, n);
}

template <typename T>
void glu_gate_backward(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
  backward_pitched(silu, a, b, n, dy, da, db, 1, n);
}

template <typename T> void glu_gate_halves_forward(bool silu, const T* ab, T* y, int64_t rows, int64_t n) {
  forward_pitched(silu, ab, ab + n, 2 * n, y, rows, n);
}

template <typename T>
void glu_gate_halves_backward(bool silu, const T* ab, const T* dy, T* dab, int64_t rows, int64_t n) {
  backward_pitched(silu, ab, ab + n, 2 * n, dy, dab, dab + n, rows, n);
}

template <typename T>
void linear_glu_forward(bool silu, const T* x, const T* w, T* ab, T* y, int64_t rows, int64_t n, int64_t in) {
  gemm<T>(x, w, ab, rows, 2 * n, in, false, true, false);
  glu_gate_halves_forward<T>(silu, ab, y, rows, n);
}

template <typename T>
void glu_down_backward(bool silu, const T* dy, const T* w_down, const T* ab, T* dh, T* dab, int64_t rows, int64_t n,
                       int64_t d) {
  gemm<T>(dy, w_down, dh, rows, n, d, false, false, false);
  glu_gate_halves_backward<T>(silu, ab, dh, dab, rows, n);
}

#define EAT_INSTANTIATE(T)                                                                 \
  template void linear_glu_forward<T>(bool, const T*, const T*, T*, T*, int64_t, int64_t, int64_t); \
  template void glu_down_backward<T>(bool, const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t); \
  template void glu_gate_forward<T>(bool, const T*, const T*, T*, int64_t);                \
  template void glu_gate_backward<T>(bool, const T*, const T*, const T*, T*, T*, int64_t); \
  template void glu_gate_halves_forward<T>(bool, const T*, T*, int64_t, int64_t);          \
  template void glu_gate_halves_backward<T>(bool, const T*, const T*, T*, int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
