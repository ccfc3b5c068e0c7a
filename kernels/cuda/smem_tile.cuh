#pragma once
// Building blocks of the tiled attention kernels (softmax and linear): carving dynamic shared
// memory into tiles, loading a run of one head's rows into a zero-padded tile, and the product of
// two shared-memory tiles into an f32 tile.
//
// Tiles are row-major with a padded leading dimension (pad_elems): bf16 rows are padded by 8
// elements (16 bytes), which keeps WMMA's 32-byte fragment alignment and spreads rows over the
// shared-memory banks; f32 tiles, read element by element by the FMA path, are padded by one
// element so a column walk never hits the same bank twice.
#include <cuda_bf16.h>
#include <mma.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "runtime/cuda/check.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/cuda/smem_budget.h"

namespace eat::cuda {

template <typename D> inline constexpr bool is_bf16_v = std::is_same_v<D, __nv_bfloat16>;

// Row padding of a tile of element type E in a kernel whose storage type is D (see above).
template <typename D, typename E> __host__ __device__ constexpr int pad_elems() {
  if constexpr (!is_bf16_v<D>) return 1;
  else return sizeof(E) == 2 ? 8 : 4;  // bf16 operands / f32 accumulators of the WMMA path
}

__host__ __device__ constexpr int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Hands out consecutive 128-byte-aligned pieces of dynamic shared memory. With a null base it
// only counts bytes: the host runs the same carving to size the launch, so the two cannot drift.
struct SmemCarver {
  unsigned char* base = nullptr;
  size_t used = 0;
  template <typename E> __host__ __device__ E* take(size_t count) {
    const size_t offset = used;
    used += (count * sizeof(E) + 127) / 128 * 128;
    return base ? reinterpret_cast<E*>(base + offset) : nullptr;
  }
};

// A tile of `rows` rows whose width is padded to `width`; ld is the padded row length.
template <typename E> struct SmemTile {
  E* p = nullptr;
  int ld = 0;
  template <typename D> __host__ __device__ static SmemTile make(SmemCarver& c, int rows, int width) {
    SmemTile t;
    t.ld = width + pad_elems<D, E>();
    t.p = c.take<E>(static_cast<size_t>(rows) * t.ld);
    return t;
  }
  __device__ E& at(int r, int c) const { return p[r * ld + c]; }
};

// Copies rows [0, rows) x columns [0, width) of a tile from global memory, where row r starts at
// src + r * row_stride, zero-filling rows >= valid_rows and columns >= valid_cols (the padding
// must be zero: padded lanes take part in the products, and 0 * garbage could be NaN).
template <typename D>
__device__ void load_tile(SmemTile<D> dst, const D* src, int64_t row_stride, int rows, int valid_rows, int width,
                          int valid_cols) {
  for (int i = threadIdx.x; i < rows * width; i += blockDim.x) {
    const int r = i / width, c = i % width;
    dst.at(r, c) = r < valid_rows && c < valid_cols ? src[r * row_stride + c] : from_f32<D>(0.f);
  }
}

// The kernel's dynamic shared memory carved as layout S (constructed from a SmemCarver and args).
template <typename S, typename... Args> __device__ S smem_layout(Args... args) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  SmemCarver carver{smem_raw};
  return S(carver, args...);
}

// Writes rows [0, rows) x columns [0, cols) of an f32 tile, times `scale`, to global memory
// (row r at dst + r * row_stride).
template <typename D>
__device__ void store_tile(D* dst, int64_t row_stride, SmemTile<float> src, int rows, int cols, float scale = 1.f) {
  for (int i = threadIdx.x; i < rows * cols; i += blockDim.x) {
    const int r = i / cols, c = i % cols;
    dst[r * row_stride + c] = from_f32<D>(src.at(r, c) * scale);
  }
}

template <typename E> __device__ void fill_tile(SmemTile<E> t, int rows, int width, E value) {
  for (int i = threadIdx.x; i < rows * width; i += blockDim.x) t.at(i / width, i % width) = value;
}

// C (M x N, f32) = or += op(A) op(B), op(A) M x K and op(B) K x N, all tiles in shared memory;
// TransA reads A stored K x M, TransB reads B stored N x K. M, N, K are multiples of 16. Called
// by every thread of the block; does not synchronise (the caller fences before reading C or
// overwriting A and B). Each output element (each 16 x 16 fragment on the WMMA path) belongs to
// one thread (one warp) and is summed in a fixed order, so results are deterministic.
//  - bf16: tensor cores through WMMA, bf16 16x16x16 fragments with f32 accumulation.
//  - f32: one FMA dot product per output element.
template <bool TransA, bool TransB, typename D>
__device__ void tile_gemm(SmemTile<float> C, SmemTile<D> A, SmemTile<D> B, int M, int N, int K, bool accumulate) {
  if constexpr (is_bf16_v<D>) {
    namespace wmma = nvcuda::wmma;
    using LayoutA = std::conditional_t<TransA, wmma::col_major, wmma::row_major>;
    using LayoutB = std::conditional_t<TransB, wmma::col_major, wmma::row_major>;
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32, tiles_n = N / 16;
    for (int f = warp; f < (M / 16) * tiles_n; f += warps) {
      const int m = f / tiles_n * 16, n = f % tiles_n * 16;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      if (accumulate)
        wmma::load_matrix_sync(acc, &C.at(m, n), C.ld, wmma::mem_row_major);
      else
        wmma::fill_fragment(acc, 0.f);
      for (int k = 0; k < K; k += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB> b;
        // A col-major fragment at (m, k) of op(A) = A^T starts at A's row k, column m.
        wmma::load_matrix_sync(a, TransA ? &A.at(k, m) : &A.at(m, k), A.ld);
        wmma::load_matrix_sync(b, TransB ? &B.at(n, k) : &B.at(k, n), B.ld);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(&C.at(m, n), acc, C.ld, wmma::mem_row_major);
    }
  } else {
    for (int i = threadIdx.x; i < M * N; i += blockDim.x) {
      const int m = i / N, n = i % N;
      float acc = accumulate ? C.at(m, n) : 0.f;
      for (int k = 0; k < K; ++k) {
        const float a = to_f32(TransA ? A.at(k, m) : A.at(m, k));
        const float b = to_f32(TransB ? B.at(n, k) : B.at(k, n));
        acc = fmaf(a, b, acc);
      }
      C.at(m, n) = acc;
    }
  }
}

// Bytes of layout S carved with args: what the kernel's smem_layout<S>(args...) takes on the device.
template <typename S, typename... Args> size_t smem_bytes(Args... args) {
  SmemCarver size;
  static_cast<void>(S(size, args...));
  return size.used;
}

// Whether layout S carved with args fits smem_budget(): kernels with a smaller-tile fallback
// launch the larger tiles only when this holds.
template <typename S, typename... Args> bool smem_fits(Args... args) {
  return smem_bytes<S>(args...) <= static_cast<size_t>(smem_budget());
}

// Lets `kernel` use `bytes` of dynamic shared memory (above the default 48 KiB needs an opt-in)
// and fails with the op's name when the budget (the device's limit, or the cap) is smaller.
template <typename Kernel> void allow_dynamic_smem(Kernel kernel, size_t bytes, const char* op) {
  const int limit = smem_budget();
  if (bytes > static_cast<size_t>(limit))
    ::eat::fail(op, ": needs ", bytes, " bytes of shared memory per block, at most ", limit, " are available");
  EAT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// Sizes the kernel's layout S (the carving it does on the device, run with args on the host),
// lets `kernel` use that much dynamic shared memory and returns the bytes for the launch.
template <typename S, typename Kernel, typename... Args>
size_t prepare_smem(Kernel kernel, const char* op, Args... args) {
  const size_t bytes = smem_bytes<S>(args...);
  allow_dynamic_smem(kernel, bytes, op);
  return bytes;
}

}  // namespace eat::cuda
