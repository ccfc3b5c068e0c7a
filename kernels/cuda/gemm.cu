// Row-major products through column-major cuBLAS: a row-major [R, C] buffer is the column-major
// [C, R] matrix, its transpose. So C = op(A) op(B) (row-major) is computed as the column-major
// C^T = op(B)^T op(A)^T: B is cuBLAS's first operand and A its second, with M and N swapped.
#include <atomic>

#include "base/dtype.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/cublas.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

std::atomic<bool> g_allow_tf32{false};

template <typename T> struct CublasType;
template <> struct CublasType<float> {
  static constexpr cudaDataType data = CUDA_R_32F;
  static cublasComputeType_t compute() { return g_allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F; }
};
template <> struct CublasType<eat::bf16> {
  static constexpr cudaDataType data = CUDA_R_16BF;
  static cublasComputeType_t compute() { return CUBLAS_COMPUTE_32F; }
};

}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }
bool allow_tf32() { return g_allow_tf32; }

template <typename T>
void gemm_batched(int64_t batch, const T* a, int64_t stride_a, const T* b, int64_t stride_b, T* c, int64_t stride_c,
                  int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate) {
  EAT_CHECK(batch >= 0 && m >= 0 && n >= 0 && k >= 0, "cuda gemm: negative size (batch ", batch, ", m ", m, ", n ",
            n, ", k ", k, ")");
  if (batch == 0 || m == 0 || n == 0) return;
  // Batches writing overlapping outputs would race on the device.
  EAT_CHECK(batch == 1 || stride_c >= m * n, "cuda gemm: output stride ", stride_c, " is less than one [", m, ", ",
            n, "] product for a batch of ", batch);
  if (k == 0) {  // an empty sum: cuBLAS need not write C, so zero it here
    if (!accumulate) {
      const size_t width = static_cast<size_t>(m * n) * sizeof(T);
      const size_t pitch = batch == 1 ? width : static_cast<size_t>(stride_c) * sizeof(T);
      EAT_CUDA_CHECK(cudaMemset2DAsync(c, pitch, 0, width, static_cast<size_t>(batch), compute_stream()));
    }
    return;
  }
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;  // beta 0: C is never read
  // First operand B: op(B)^T is the stored B read column-major when B is [K, N] (ld N), and its
  // transpose when B is stored [N, K] (ld K). Second operand A likewise: [M, K] (ld K) untransposed,
  // stored [K, M] (ld M) transposed. The output C^T is [N, M] column-major: ld N.
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int64_t ld_b = trans_b ? k : n;
  const int64_t ld_a = trans_a ? m : k;
  const int64_t ld_c = n;
  constexpr cudaDataType type = CublasType<T>::data;
  const cublasComputeType_t compute = CublasType<T>::compute();
  if (batch == 1) {
    EAT_CUBLAS_CHECK(cublasGemmEx_64(cublas_handle(), op_b, op_a, n, m, k, &alpha, b, type, ld_b, a, type, ld_a, &beta, c,
                                     type, ld_c, compute, CUBLAS_GEMM_DEFAULT));
  } else {
    EAT_CUBLAS_CHECK(cublasGemmStridedBatchedEx_64(cublas_handle(), op_b, op_a, n, m, k, &alpha, b, type, ld_b, stride_b, a,
                                                   type, ld_a, stride_a, &beta, c, type, ld_c, stride_c, batch, compute,
                                                   CUBLAS_GEMM_DEFAULT));
  }
}

template <typename T>
void gemm(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate) {
  gemm_batched<T>(1, a, 0, b, 0, c, 0, m, n, k, trans_a, trans_b, accumulate);
}

template <typename T>
void gemm_onto(const T* a, const T* b, const T* r, T* c, int64_t m, int64_t n, int64_t k, bool trans_b) {
  gemm<T>(a, b, c, m, n, k, false, trans_b, false);
  add_forward<T>(r, c, c, m * n);
}

#define EAT_INSTANTIATE(T)                                                                                  \
  template void gemm<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, bool, bool, bool);               \
  template void gemm_onto<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, bool);            \
  template void gemm_batched<T>(int64_t, const T*, int64_t, const T*, int64_t, T*, int64_t, int64_t, int64_t, \
                                int64_t, bool, bool, bool);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
