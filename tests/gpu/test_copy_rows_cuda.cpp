// copy_rows, the strided device-to-device copy behind the time-row movers of sequence parallelism:
// its copy kernel (the path for pitches the copy engine refuses, 2 GiB and more) against a host
// copy, byte for byte, at every alignment it picks a unit for; the same calls through the copy
// engine; and real pitches above 2 GiB when the device has the memory.
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "base/random.h"
#include "framework/parallel/time_rows.h"
#include "gpu/gpu_guard.h"
#include "kernels/cuda/copy_rows.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

using namespace eat;

namespace {

// Routes copy_rows through its copy kernel while in scope.
class ForcedCopyKernel {
 public:
  ForcedCopyKernel() { cuda::force_copy_rows_kernel(true); }
  ~ForcedCopyKernel() { cuda::force_copy_rows_kernel(false); }
  ForcedCopyKernel(const ForcedCopyKernel&) = delete;
  ForcedCopyKernel& operator=(const ForcedCopyKernel&) = delete;
};

// A device buffer of `bytes`, freed on scope exit.
class DeviceBytes {
 public:
  explicit DeviceBytes(size_t bytes) : p_(static_cast<unsigned char*>(cuda::device_alloc(bytes))) {}
  ~DeviceBytes() { cuda::device_free(p_); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  unsigned char* get() const { return p_; }
  void upload(const std::vector<unsigned char>& host, size_t at = 0) const { cuda::copy(p_ + at, true, host.data(), false, host.size()); }
  std::vector<unsigned char> download(size_t at, size_t bytes) const {
    std::vector<unsigned char> host(bytes);
    cuda::copy(host.data(), false, p_ + at, true, bytes);
    return host;
  }

 private:
  unsigned char* p_;
};

std::vector<unsigned char> pattern(size_t bytes, uint32_t seed) {
  std::vector<unsigned char> v(bytes);
  uint32_t x = seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<unsigned char>(x >> 24);
  }
  return v;
}

struct Layout {
  size_t dst_offset, dst_pitch, src_offset, src_pitch, width, rows;
};

// copy_rows between offsets of two device buffers against the same copy on the host; the bytes
// between and after the destination's blocks must keep their sentinel.
void check_layout(const Layout& l) {
  CAPTURE(l.dst_offset);
  CAPTURE(l.dst_pitch);
  CAPTURE(l.src_offset);
  CAPTURE(l.src_pitch);
  CAPTURE(l.width);
  CAPTURE(l.rows);
  const size_t src_bytes = l.src_offset + l.src_pitch * l.rows, dst_bytes = l.dst_offset + l.dst_pitch * l.rows;
  const std::vector<unsigned char> src = pattern(src_bytes, 7), sentinel = pattern(dst_bytes, 11);
  std::vector<unsigned char> want = sentinel;
  for (size_t r = 0; r < l.rows; ++r)
    std::memcpy(want.data() + l.dst_offset + r * l.dst_pitch, src.data() + l.src_offset + r * l.src_pitch, l.width);
  DeviceBytes s(src_bytes), d(dst_bytes);
  s.upload(src);
  d.upload(sentinel);
  cuda::copy_rows(d.get() + l.dst_offset, l.dst_pitch, s.get() + l.src_offset, l.src_pitch, l.width, l.rows);
  CHECK(d.download(0, dst_bytes) == want);
}

// Layouts whose addresses, pitches and width share 16, 8, 4, 2 and 1 as their largest power-of-two
// divisor (the unit the kernel copies in); the last has 17.85M one-byte units, more than one sweep
// of the kernel's grid (65,535 blocks of 256 threads) covers.
const std::vector<Layout> kLayouts{
    {0, 256, 0, 512, 160, 5}, {16, 96, 32, 80, 64, 7}, {8, 40, 0, 24, 24, 9},       {4, 12, 8, 20, 12, 13},
    {2, 30, 6, 18, 14, 11},   {1, 17, 3, 9, 7, 5},     {0, 4096, 0, 4096, 4096, 3}, {3, 257, 1, 255, 255, 70000}};

}  // namespace

TEST_CASE("cuda copy_rows: the copy kernel moves the same bytes as a host copy, at every alignment") {
  test::require_gpu();
  const ForcedCopyKernel forced;
  for (const Layout& l : kLayouts) check_layout(l);
}

TEST_CASE("cuda copy_rows: the copy engine moves the same bytes") {
  test::require_gpu();
  for (const Layout& l : kLayouts) check_layout(l);
}

TEST_CASE("cuda copy_rows: copy_time through the copy kernel moves the same rows as on the CPU") {
  test::require_gpu();
  const ForcedCopyKernel forced;
  Generator gen(231);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    Tensor from = Tensor::randn({3, 9, 2, 5}, gen, 1.0).to(dtype);
    Tensor to = Tensor::full({3, 6, 2, 5}, -7.0, dtype);
    Tensor from_d = from.to(Device::cuda), to_d = to.to(Device::cuda);
    copy_time(from, 2, to, 1, 4);
    copy_time(from_d, 2, to_d, 1, 4);
    CHECK(to_d.to_f64_vector() == to.to_f64_vector());
  }
}

TEST_CASE("cuda copy_rows: pitches above 2 GiB, which the copy engine refuses (skipped without 3 GiB free)") {
  test::require_gpu();
  size_t free_bytes = 0, total_bytes = 0;
  cuda::empty_cache();
  REQUIRE(cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess);
  if (free_bytes < (size_t{3} << 30)) {
    MESSAGE("only ", free_bytes, " bytes of device memory free: the 2 GiB pitch case is skipped");
    return;
  }
  // Two blocks 2 GiB + 4 KiB apart (a 64 KiB row each), gathered into a packed buffer and
  // scattered back out, so both a wide source pitch and a wide destination pitch are taken.
  const size_t wide = (size_t{1} << 31) + 4096, width = 65536, rows = 2;
  const std::vector<unsigned char> blocks = pattern(width * rows, 13);
  {
    DeviceBytes spread(wide + width), packed(width * rows);
    spread.upload(std::vector<unsigned char>(blocks.begin(), blocks.begin() + width), 0);
    spread.upload(std::vector<unsigned char>(blocks.begin() + width, blocks.end()), wide);
    cuda::copy_rows(packed.get(), width, spread.get(), wide, width, rows);
    CHECK(packed.download(0, width * rows) == blocks);

    const std::vector<unsigned char> other = pattern(width * rows, 17);
    packed.upload(other);
    cuda::copy_rows(spread.get(), wide, packed.get(), width, width, rows);
    CHECK(spread.download(0, width) == std::vector<unsigned char>(other.begin(), other.begin() + width));
    CHECK(spread.download(wide, width) == std::vector<unsigned char>(other.begin() + width, other.end()));
  }
  cuda::empty_cache();
}
