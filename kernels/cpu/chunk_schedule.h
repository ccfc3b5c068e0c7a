#pragma once
// How a chunked sequence kernel spreads its work over CPU threads: the pieces every chunked
// kernel shares (Lightning Attention today; BASED's Taylor attention, RAT's chunk scan and Titans'
// memory next). Such a kernel cuts each of B x H heads' T tokens into blocks of C tokens (the last
// one may be shorter) and carries a fixed-size state from block to block. Two schedules run the
// same per-block arithmetic, so they give bit-identical results; they differ in parallelism and
// memory:
//  - per_head: each thread takes a contiguous share of the (batch, head) pairs and walks their
//    blocks in time order, a few heads side by side, with each head's state in a small local
//    buffer (HeadStates, no state memory; for_each_head_group); parallelism B * H.
//  - per_block: one task per (batch, head, block); the states entering every block are first
//    built by a short scan per head and kept (StateStack, [B, H, blocks + 1, state]);
//    parallelism B * H * blocks.
//  - automatic: per_head when the heads keep every thread about equally busy, else per_block
//    (prefer_per_head).
// Tensors are [B, T, H, width] (heads side by side in every token's row) and states [B, H, ...].
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>

namespace eat::cpu {

enum class ChunkedSchedule { automatic, per_head, per_block };

// The number of blocks of length `block` that cover T tokens (the last may be shorter).
inline int64_t chunk_count(int64_t T, int64_t block) { return (T + block - 1) / block; }

// Block j of flat (batch, head) index bh: rows [t0, t0 + L) of head h in batch b.
struct BlockAt {
  int64_t b, h, t0, L;
};

// B sequences of T tokens with H heads, cut into `count` blocks of `size` tokens.
struct ChunkGrid {
  int64_t B, T, H, size, count;
  ChunkGrid(int64_t B_, int64_t T_, int64_t H_, int64_t block)
      : B(B_), T(T_), H(H_), size(block), count(chunk_count(T_, block)) {}
  int64_t heads() const { return B * H; }
  BlockAt locate(int64_t bh, int64_t j) const {
    const int64_t t0 = j * size;
    return {bh / H, bh % H, t0, std::min(size, T - t0)};
  }
  // Row r of block a in a [B, T, H, width] tensor.
  template <typename T>
  T* row(T* base, const BlockAt& a, int64_t r, int64_t width) const {
    return base + ((a.b * this->T + a.t0 + r) * H + a.h) * width;
  }
};

// Whether the automatic schedule runs per head. Whole heads per thread balance when they divide
// evenly, or nearly (at most 1 in 4 idle) when every thread gets at least 4; otherwise the blocks
// are split across threads too.
inline bool prefer_per_head(ChunkedSchedule schedule, int64_t heads) {
  if (schedule != ChunkedSchedule::automatic) return schedule == ChunkedSchedule::per_head;
  const int64_t threads = omp_get_max_threads();
  return heads % threads == 0 || heads >= 4 * threads;
}

// Calls f(lo, hi) for groups of consecutive (batch, head) indices, this thread's contiguous share
// of the `heads` (call it inside a parallel region; outside one, the caller gets them all). A sweep
// walks the blocks of a whole group in time order, head after head within each block: heads sit
// side by side in every row of a [B, T, H, width] tensor, so the group's rows of a block are one
// contiguous run per token instead of a few cache lines every H * width elements, and the hardware
// prefetchers can stream them. The group is kept small enough that its states (two of
// state_bytes per head, HeadStates) stay in the core's L2 cache.
template <typename F>
void for_each_head_group(int64_t heads, int64_t state_bytes, F&& f) {
  const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
  const int64_t lo = heads * t / threads, hi = heads * (t + 1) / threads;
  constexpr int64_t kGroupStateBytes = 128 * 1024;
  const int64_t group = std::max<int64_t>(1, kGroupStateBytes / (2 * state_bytes));
  for (int64_t g = lo; g < hi; g += group) f(g, std::min(hi, g + group));
}

// The running states (or state gradients) of heads [lo, hi) of one per-head sweep, `size`
// elements each, each with a second buffer for the next block's value.
template <typename T>
class HeadStates {
 public:
  HeadStates(int64_t lo, int64_t hi, int64_t size)
      : lo_(lo), size_(size), buffer_(static_cast<size_t>(2 * (hi - lo) * size)), flip_(static_cast<size_t>(hi - lo)) {}
  // Starts every head from its entry of a [B, H, size] tensor (null: zero).
  void load(const T* from) {
    for (int64_t bh = lo_; bh < hi(); ++bh) {
      flip_[idx(bh)] = 0;
      if (from) std::copy(from + bh * size_, from + (bh + 1) * size_, current(bh));
      else std::fill(current(bh), current(bh) + size_, T(0));
    }
  }
  void store(T* to) {
    for (int64_t bh = lo_; bh < hi(); ++bh) std::copy(current(bh), current(bh) + size_, to + bh * size_);
  }
  T* current(int64_t bh) { return slot(bh, flip_[idx(bh)]); }
  T* next(int64_t bh) { return slot(bh, 1 - flip_[idx(bh)]); }
  void advance(int64_t bh) { flip_[idx(bh)] ^= 1; }  // next becomes current

 private:
  int64_t hi() const { return lo_ + static_cast<int64_t>(flip_.size()); }
  size_t idx(int64_t bh) const { return static_cast<size_t>(bh - lo_); }
  T* slot(int64_t bh, int which) { return buffer_.data() + (2 * static_cast<int64_t>(idx(bh)) + which) * size_; }
  int64_t lo_, size_;
  std::vector<T> buffer_;
  std::vector<int> flip_;
};

// count + 1 states of `size` elements per (batch, head), for the per-block schedule: entry j is
// the state entering block j, entry count the one after the last block (or the matching state
// gradients).
template <typename T>
struct StateStack {
  int64_t per_head, size;
  std::unique_ptr<T[]> data;  // left uninitialised: every entry is written before it is read
  StateStack(const ChunkGrid& grid, int64_t state_size)
      : per_head(grid.count + 1), size(state_size), data(new T[static_cast<size_t>(grid.heads() * per_head * size)]) {}
  T* at(int64_t bh, int64_t j) const { return data.get() + (bh * per_head + j) * size; }
};

// Asks the cache for the rows of block j of head bh in each [B, T, H, width] tensor given (null
// ones skipped; j outside the grid: nothing). One head's rows are H * width elements apart, a new
// 4 KiB page every few rows, where the hardware prefetchers stop; the per-head sweeps fetch the
// next block this way while they compute on the current one.
template <typename T>
void prefetch_block(const ChunkGrid& grid, int64_t bh, int64_t j, std::initializer_list<std::pair<const T*, int64_t>> tensors) {
  if (j < 0 || j >= grid.count) return;
  constexpr int64_t kLine = 64 / sizeof(T);  // elements per cache line
  const BlockAt a = grid.locate(bh, j);
  for (const auto& [base, width] : tensors) {
    if (!base) continue;
    for (int64_t r = 0; r < a.L; ++r) {
      const T* row = grid.row(base, a, r, width);
      for (int64_t c = 0; c < width; c += kLine) __builtin_prefetch(row + c);
    }
  }
}

// dst[0, n) = src[0, n) with non-temporal stores when dst is 32-byte aligned: states saved for the
// backward are read again only long after they leave every cache, so fetching their lines before
// overwriting them (what an ordinary store does) would only double the traffic and push useful
// rows out. Call stream_fence() before the data is read by another thread.
template <typename T>
void stream_copy(const T* src, T* dst, int64_t n) {
#ifdef __AVX__
  constexpr int64_t kLanes = 32 / sizeof(T);
  if (reinterpret_cast<uintptr_t>(dst) % 32 == 0 && n % kLanes == 0) {
    for (int64_t i = 0; i < n; i += kLanes) {
      if constexpr (sizeof(T) == 4) _mm256_stream_ps(reinterpret_cast<float*>(dst + i), _mm256_loadu_ps(reinterpret_cast<const float*>(src + i)));
      else _mm256_stream_pd(reinterpret_cast<double*>(dst + i), _mm256_loadu_pd(reinterpret_cast<const double*>(src + i)));
    }
    return;
  }
#endif
  std::copy(src, src + n, dst);
}
inline void stream_fence() {
#ifdef __AVX__
  _mm_sfence();
#endif
}

}  // namespace eat::cpu
