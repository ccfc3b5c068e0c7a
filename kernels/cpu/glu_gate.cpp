#include "kernels/glu_gate.h"
#include "kernels/cpu/packed_gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sigmoid_block.h"
#include "kernels/matmul.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace eat::cpu {

namespace {

// Output element k of [rows, n] reads a and b (and writes da and db) at (k / n) * pitch + k % n:
// pitch n for separate tensors (rows 1), 2n for the halves of one. Calls f(out, in, length) on
// runs that stay within a row, in blocks of kPointwiseBlock outputs spread over the threads; each
// value is computed alone, so neither the blocks nor the threads change a result.
template <typename F>
void for_row_runs(int64_t rows, int64_t n, int64_t pitch, F&& f) {
  for_pointwise_blocks(rows * n, [&](int64_t i0, int64_t len) {
    for (int64_t i = i0; i < i0 + len;) {
      const int64_t row = i / n, col = i % n, run = std::min(i0 + len - i, n - col);
      f(i, row * pitch + col, run);
      i += run;
    }
  });
}

// y = act(a) * b on a run of len <= kPointwiseBlock elements.
template <typename T>
void gate_run(bool silu, const T* a, const T* b, T* y, int64_t len) {
  ConstArrayMap<T> A(a, len), B(b, len);
  ArrayMap<T> Y(y, len);
  if (!silu) {
    Y = A * B;
    return;
  }
  alignas(64) T s[kPointwiseBlock];
  sigmoid_block(a, s, len);
  Y = (A * ConstArrayMap<T>(s, len)) * B;
}

template <typename T>
void forward_pitched(bool silu, const T* a, const T* b, int64_t pitch, T* y, int64_t rows, int64_t n) {
  for_row_runs(rows, n, pitch, [&](int64_t out, int64_t in, int64_t len) { gate_run(silu, a + in, b + in, y + out, len); });
}

// Calls f(r, col, len) over rows [row, row + rows) of n columns, in runs of up to kPointwiseBlock.
template <typename F>
void for_row_blocks(int64_t row, int64_t rows, int64_t n, F&& f) {
  for (int64_t r = row; r < row + rows; ++r)
    for (int64_t col = 0; col < n; col += kPointwiseBlock) f(r, col, std::min(kPointwiseBlock, n - col));
}

// The gate of rows [row, row + rows) of the joined projection ab [rows, 2n], as the packed GEMM
// finishes them (packed_gemm_rows_done).
struct GateOfRows {
  bool silu;
  const float* ab;
  float* y;
  int64_t n;

  static void run(void* context, int64_t row, int64_t rows) {
    const GateOfRows& g = *static_cast<const GateOfRows*>(context);
    for_row_blocks(row, rows, g.n, [&](int64_t r, int64_t col, int64_t len) {
      const float* a = g.ab + r * 2 * g.n + col;
      gate_run(g.silu, a, a + g.n, g.y + r * g.n + col, len);
    });
  }
};

// da = dy * b * act'(a) and db = dy * act(a) on a run of len <= kPointwiseBlock elements, whole-run
// array expressions, one per case: a loop that tests silu, da and db per element (and may alias
// its pointers) stays scalar. da and db may be a and b themselves (the gradient written over the
// saved inputs): the run's da is made aside first, db (the last reader of a) written, and then da.
template <typename T>
void gate_backward_run(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t len) {
  ConstArrayMap<T> A(a, len), B(b, len), DY(dy, len);
  alignas(64) T da_run[kPointwiseBlock];
  ArrayMap<T> DA(da_run, len);
  if (!silu) {
    if (da) DA = DY * B;
    if (db) ArrayMap<T>(db, len) = DY * A;
  } else {
    alignas(64) T s[kPointwiseBlock];
    sigmoid_block(a, s, len);
    ConstArrayMap<T> S(s, len);
    if (da) DA = DY * B * silu_slope(A, S);
    if (db) ArrayMap<T>(db, len) = DY * (A * S);
  }
  if (da) std::copy(da_run, da_run + len, da);
}

template <typename T>
void backward_pitched(bool silu, const T* a, const T* b, int64_t pitch, const T* dy, T* da, T* db, int64_t rows,
                      int64_t n) {
  for_row_runs(rows, n, pitch, [&](int64_t out, int64_t in, int64_t len) {
    gate_backward_run(silu, a + in, b + in, dy + out, da ? da + in : nullptr, db ? db + in : nullptr, len);
  });
}

// The gate's backward on rows [row, row + rows) of dy [rows, n] as the packed GEMM finishes them
// (the down projection's input gradient, packed_gemm_rows_done): dab over the joined projection ab.
struct GateGradientOfRows {
  bool silu;
  const float* ab;
  const float* dy;
  float* dab;
  int64_t n;

  static void run(void* context, int64_t row, int64_t rows) {
    const GateGradientOfRows& g = *static_cast<const GateGradientOfRows*>(context);
    for_row_blocks(row, rows, g.n, [&](int64_t r, int64_t col, int64_t len) {
      const int64_t in = r * 2 * g.n + col;
      gate_backward_run(g.silu, g.ab + in, g.ab + in + g.n, g.dy + r * g.n + col, g.dab + in, g.dab + in + g.n, len);
    });
  }
};

}  // namespace

template <typename T>
void glu_gate_forward(bool silu, const T* a, const T* b, T* y, int64_t n) {
  forward_pitched(silu, a, b, n, y, 1, n);
}

template <typename T>
void glu_gate_backward(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
  backward_pitched(silu, a, b, n, dy, da, db, 1, n);
}

template <typename T>
void glu_gate_halves_forward(bool silu, const T* ab, T* y, int64_t rows, int64_t n) {
  forward_pitched(silu, ab, ab + n, 2 * n, y, rows, n);
}

template <typename T>
void glu_gate_halves_backward(bool silu, const T* ab, const T* dy, T* dab, int64_t rows, int64_t n) {
  backward_pitched(silu, ab, ab + n, 2 * n, dy, dab, dab + n, rows, n);
}

template <typename T>
void linear_glu_forward(bool silu, const T* x, const T* w, T* ab, T* y, int64_t rows, int64_t n, int64_t in) {
  if constexpr (std::is_same_v<T, float>) {
    if (packed_gemm_worth(rows, 2 * n, in)) {
      GateOfRows gate{silu, ab, y, n};
      packed_gemm_rows_done(x, w, ab, rows, 2 * n, in, true, RowsDone{&GateOfRows::run, &gate});
      return;
    }
  }
  gemm<T>(x, w, ab, rows, 2 * n, in, false, true, false);
  glu_gate_halves_forward<T>(silu, ab, y, rows, n);
}

template <typename T>
void glu_down_backward(bool silu, const T* dy, const T* w_down, const T* ab, T* dh, T* dab, int64_t rows, int64_t n,
                       int64_t d) {
  if constexpr (std::is_same_v<T, float>) {
    if (packed_gemm_worth(rows, n, d)) {
      GateGradientOfRows gate{silu, ab, dh, dab, n};
      packed_gemm_rows_done(dy, w_down, dh, rows, n, d, false, RowsDone{&GateGradientOfRows::run, &gate});
      return;
    }
  }
  gemm<T>(dy, w_down, dh, rows, n, d, false, false, false);
  glu_gate_halves_backward<T>(silu, ab, dh, dab, rows, n);
}

#define EAT_INSTANTIATE(T)                                                                              \
  template void linear_glu_forward<T>(bool, const T*, const T*, T*, T*, int64_t, int64_t, int64_t);     \
  template void glu_down_backward<T>(bool, const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t); \
  template void glu_gate_forward<T>(bool, const T*, const T*, T*, int64_t);                             \
  template void glu_gate_backward<T>(bool, const T*, const T*, const T*, T*, T*, int64_t);              \
  template void glu_gate_halves_forward<T>(bool, const T*, T*, int64_t, int64_t);                       \
  template void glu_gate_halves_backward<T>(bool, const T*, const T*, T*, int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
