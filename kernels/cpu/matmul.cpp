#include "kernels/matmul.h"
#include "kernels/cpu/packed_gemm.h"
#include "kernels/elementwise.h"
#include "kernels/cpu/parallel.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>
#include <vector>

namespace eat::cpu {

namespace {

template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MutMap = Eigen::Map<RowMajor<T>, Eigen::Unaligned>;

template <typename T>
void gemm_one(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool ta, bool tb, bool acc) {
  Eigen::Map<const RowMajor<T>> A(a, ta ? k : m, ta ? m : k);
  Eigen::Map<const RowMajor<T>> B(b, tb ? n : k, tb ? k : n);
  MutMap<T> C(c, m, n);
  // Four explicit cases so Eigen sees plain (transposed) maps and picks its GEMM kernel directly.
  if (!ta && !tb) {
    if (acc) C.noalias() += A * B; else C.noalias() = A * B;
  } else if (ta && !tb) {
    if (acc) C.noalias() += A.transpose() * B; else C.noalias() = A.transpose() * B;
  } else if (!ta && tb) {
    if (acc) C.noalias() += A * B.transpose(); else C.noalias() = A * B.transpose();
  } else {
    if (acc) C.noalias() += A.transpose() * B.transpose(); else C.noalias() = A.transpose() * B.transpose();
  }
}

// A weight gradient, C = A^T B summed over many tokens (dW = dY^T X: a long inner dimension, a
// small C), splits the inner dimension into kInnerParts fixed parts: one single-threaded product
// per part, spread over the threads, then C = the parts' sum in part order. Eigen's own parallel
// product splits only C, whose few panels keep the threads waiting on each other at every inner
// block: on 2 cores it ran such products several times slower than this. Fixed parts (not one
// per thread) keep the result independent of the thread count.
constexpr int64_t kInnerParts = 8;

bool split_inner(int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  return ta && !tb && k >= kInnerParts * 256 && k >= 4 * std::max(m, n);
}

template <typename T>
void gemm_split_inner(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool accumulate) {
  const int64_t part_k = (k + kInnerParts - 1) / kInnerParts, size = m * n;
  // Every part's product: scratch, reused across calls (this runs once per weight per step).
  static thread_local std::vector<T> scratch;
  scratch.resize(static_cast<size_t>(kInnerParts * size));
  T* parts = scratch.data();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < kInnerParts; ++p) {
    const int64_t k0 = std::min(k, p * part_k), len = std::min(k, k0 + part_k) - k0;
    // A is stored [K, M] and B [K, N]: a part is a block of rows of each.
    gemm_one(a + k0 * m, b + k0 * n, parts + p * size, m, n, len, true, false, false);
  }
#pragma omp parallel for schedule(static) if(parallel_worth(size * kInnerParts))
  for (int64_t i = 0; i < m; ++i) {
    T* out = c + i * n;
    for (int64_t p = 0; p < kInnerParts; ++p) {
      const T* part = parts + p * size + i * n;
      if (p == 0 && !accumulate) {
        std::copy(part, part + n, out);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) out[j] += part[j];
      }
    }
  }
}

// Products with many rows (a layer's tokens: x W^T forward, dY W for the input's gradient) split C
// into fixed blocks of kRowChunk rows, one single-threaded Eigen product per block, spread over the
// threads. Eigen's own parallel product shares its packed B between the threads and waits on them
// at every block of the inner dimension; on 2 shared cores that stall grew with any load on the
// other core. Fixed blocks (not one per thread) keep every row's arithmetic independent of the
// thread count.
constexpr int64_t kRowChunk = 256;

bool row_chunks(int64_t m, bool trans_a) { return !trans_a && m >= 2 * kRowChunk; }

template <typename T>
void gemm_row_chunks(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool trans_b, bool accumulate) {
  const int64_t chunks = (m + kRowChunk - 1) / kRowChunk;
#pragma omp parallel for schedule(static) if(parallel_worth(m * n * k))
  for (int64_t i = 0; i < chunks; ++i) {
    const int64_t i0 = i * kRowChunk, rows = std::min(kRowChunk, m - i0);
    gemm_one(a + i0 * k, b, c + i0 * n, rows, n, k, false, trans_b, accumulate);
  }
}

}  // namespace

template <typename T>
void gemm(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) std::fill(c, c + m * n, T(0));
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (packed_gemm_worth(m, n, k)) {
      packed_gemm(a, b, c, m, n, k, trans_a, trans_b, accumulate);
      return;
    }
  }
  // Eigen runs the rest: f64 (the tests' references and gradient checks), f32 products too small
  // for the packed GEMM, and f32 on builds without AVX2.
  if (split_inner(m, n, k, trans_a, trans_b)) {
    gemm_split_inner(a, b, c, m, n, k, accumulate);
    return;
  }
  if (row_chunks(m, trans_a)) {
    gemm_row_chunks(a, b, c, m, n, k, trans_b, accumulate);
    return;
  }
  gemm_one(a, b, c, m, n, k, trans_a, trans_b, accumulate);
}

template <typename T>
void gemm_onto(const T* a, const T* b, const T* r, T* c, int64_t m, int64_t n, int64_t k, bool trans_b) {
  if constexpr (std::is_same_v<T, float>) {
    if (packed_gemm_worth(m, n, k)) {
      packed_gemm_onto(a, b, r, c, m, n, k, trans_b);
      return;
    }
  }
  gemm(a, b, c, m, n, k, false, trans_b, false);
  add_forward(r, c, c, m * n);
}

template <typename T>
void gemm_batched(int64_t batch, const T* a, int64_t stride_a, const T* b, int64_t stride_b, T* c, int64_t stride_c,
                  int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate) {
  if (batch >= omp_get_max_threads() && batch > 1) {
#pragma omp parallel for schedule(static) if(parallel_worth(batch * m * n * k))
    for (int64_t i = 0; i < batch; ++i)
      gemm(a + i * stride_a, b + i * stride_b, c + i * stride_c, m, n, k, trans_a, trans_b, accumulate);
  } else {
    for (int64_t i = 0; i < batch; ++i)
      gemm(a + i * stride_a, b + i * stride_b, c + i * stride_c, m, n, k, trans_a, trans_b, accumulate);
  }
}

template <typename T>
void column_sums(const T* x, T* out, int64_t rows, int64_t cols) {
  // Each thread owns a block of columns and walks the rows in order: fixed order per element.
  constexpr int64_t kCols = 64;
  int64_t blocks = (cols + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t bj = 0; bj < blocks; ++bj) {
    int64_t j0 = bj * kCols, j1 = std::min(cols, j0 + kCols);
    T acc[kCols] = {};
    for (int64_t i = 0; i < rows; ++i) {
      const T* row = x + i * cols;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) acc[j - j0] += row[j];
    }
    for (int64_t j = j0; j < j1; ++j) out[j] = acc[j - j0];
  }
}

template <typename T>
void add_row_vector(T* out, const T* bias, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    T* row = out + i * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) row[j] += bias[j];
  }
}

#define EAT_INSTANTIATE(T)                                                                                  \
  template void gemm<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, bool, bool, bool);               \
  template void gemm_onto<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, bool);            \
  template void gemm_batched<T>(int64_t, const T*, int64_t, const T*, int64_t, T*, int64_t, int64_t, int64_t, \
                                int64_t, bool, bool, bool);                                                 \
  template void column_sums<T>(const T*, T*, int64_t, int64_t);                                             \
  template void add_row_vector<T>(T*, const T*, int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
