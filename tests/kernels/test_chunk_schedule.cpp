// The CPU chunk schedule shared by the chunked sequence kernels (kernels/cpu/chunk_schedule.h):
// blocks cover every token once, head groups cover every head once across threads, the per-head
// state buffers flip and load/store in place, and the automatic choice follows its rule.
#include <doctest/doctest.h>
#include <omp.h>

#include <vector>

#include "kernels/cpu/chunk_schedule.h"

using namespace eat::cpu;

TEST_CASE("chunk schedule: the blocks of a grid cover every token of every head once, the last one short") {
  const ChunkGrid grid(2, 10, 3, 4);  // B 2, T 10, H 3, blocks of 4: 4 + 4 + 2
  CHECK(grid.count == 3);
  CHECK(chunk_count(8, 4) == 2);
  CHECK(chunk_count(1, 64) == 1);
  std::vector<int> seen(2 * 10 * 3, 0);
  for (int64_t bh = 0; bh < grid.heads(); ++bh)
    for (int64_t j = 0; j < grid.count; ++j) {
      const BlockAt a = grid.locate(bh, j);
      CHECK(a.b == bh / 3);
      CHECK(a.h == bh % 3);
      CHECK(a.L == (j == 2 ? 2 : 4));
      for (int64_t r = 0; r < a.L; ++r) seen[static_cast<size_t>((a.b * 10 + a.t0 + r) * 3 + a.h)] += 1;
    }
  for (int s : seen) CHECK(s == 1);
  // Row addressing in a [B, T, H, width] tensor: token 9 of head 2 in batch 1, width 5.
  std::vector<float> x(2 * 10 * 3 * 5);
  const BlockAt last = grid.locate(1 * 3 + 2, 2);
  CHECK(grid.row(x.data(), last, 1, 5) - x.data() == ((1 * 10 + 9) * 3 + 2) * 5);
}

TEST_CASE("chunk schedule: head groups of all threads cover every head once, each group's states fit the budget") {
  for (int threads : {1, 2, 3}) {
    for (int64_t heads : {1, 7, 64}) {
      CAPTURE(threads);
      CAPTURE(heads);
      std::vector<int> seen(static_cast<size_t>(heads), 0);
      std::vector<int64_t> largest(static_cast<size_t>(threads), 0);
#pragma omp parallel num_threads(threads)
      for_each_head_group(heads, 64 * 64 * 4, [&](int64_t lo, int64_t hi) {
        for (int64_t bh = lo; bh < hi; ++bh) seen[static_cast<size_t>(bh)] += 1;  // disjoint ranges: no race
        auto& l = largest[static_cast<size_t>(omp_get_thread_num())];
        l = std::max(l, hi - lo);
      });
      for (int s : seen) CHECK(s == 1);
      for (int64_t l : largest) CHECK(l <= 4);  // 128 KiB / (2 x 16 KiB states)
    }
  }
}

TEST_CASE("chunk schedule: head states start from a tensor or zero, flip, and store back") {
  const std::vector<double> init = {1, 2, 3, 4, 5, 6};  // 3 heads of 2 elements
  HeadStates<double> st(1, 3, 2);                       // heads 1 and 2
  st.load(init.data());
  CHECK(st.current(1)[0] == 3);
  CHECK(st.current(2)[1] == 6);
  st.next(1)[0] = 30;
  st.next(1)[1] = 40;
  st.advance(1);
  std::vector<double> out(6, -1);
  st.store(out.data());
  CHECK(out == std::vector<double>{-1, -1, 30, 40, 5, 6});
  st.load(nullptr);
  CHECK(st.current(1)[0] == 0);
  CHECK(st.current(2)[1] == 0);
}

TEST_CASE("chunk schedule: automatic runs per head when whole heads balance the threads") {
  CHECK(prefer_per_head(ChunkedSchedule::per_head, 1));
  CHECK_FALSE(prefer_per_head(ChunkedSchedule::per_block, 64));
  const int64_t threads = omp_get_max_threads();
  CHECK(prefer_per_head(ChunkedSchedule::automatic, threads * 3));
  CHECK(prefer_per_head(ChunkedSchedule::automatic, threads * 4 + 1));
  if (threads > 1) CHECK_FALSE(prefer_per_head(ChunkedSchedule::automatic, threads + 1));
}
