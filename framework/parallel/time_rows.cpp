#include "framework/parallel/time_rows.h"

#include "framework/dispatch.h"
#include "base/error.h"
#include "framework/ops.h"
#include "kernels/cpu/copy_rows.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/copy_rows.h"
#endif

namespace eat {

void copy_blocks(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, int64_t blocks,
                 Device device) {
  if (width == 0 || blocks <= 0) return;
  if (device == Device::cuda) {
    EAT_CUDA_BRANCH(cuda::copy_rows(dst, dst_pitch, src, src_pitch, width, static_cast<size_t>(blocks)));
    return;
  }
  cpu::copy_rows(dst, dst_pitch, src, src_pitch, width, static_cast<size_t>(blocks));
}

Shape with_time(const Tensor& x, int64_t T) {
  Shape s = x.shape();
  s[1] = T;
  return s;
}

void copy_time(const Tensor& from, int64_t from_t, const Tensor& to, int64_t to_t, int64_t count) {
  EAT_CHECK(from.dtype() == to.dtype() && from.device() == to.device() && from.dim() == to.dim() && from.dim() >= 2 &&
                from.size(0) == to.size(0),
            "copy_time: ", from.describe(), " and ", to.describe(), " must share the dtype, the device and B");
  for (int64_t i = 2; i < from.dim(); ++i)
    EAT_CHECK(from.size(i) == to.size(i), "copy_time: ", shape_str(from.shape()), " and ", shape_str(to.shape()),
              " differ in axis ", i);
  EAT_CHECK(count >= 0 && from_t >= 0 && to_t >= 0 && from_t + count <= from.size(1) && to_t + count <= to.size(1),
            "copy_time: ", count, " rows from row ", from_t, " of ", shape_str(from.shape()), " to row ", to_t, " of ",
            shape_str(to.shape()), " leave the time axis");
  // Bytes per token: the product of the trailing axes times the element size.
  size_t row = dtype_size(from.dtype());
  for (int64_t i = 2; i < from.dim(); ++i) row *= static_cast<size_t>(from.size(i));
  const size_t src_pitch = static_cast<size_t>(from.size(1)) * row, dst_pitch = static_cast<size_t>(to.size(1)) * row;
  copy_blocks(static_cast<char*>(to.raw_data()) + static_cast<size_t>(to_t) * row, dst_pitch,
              static_cast<const char*>(from.raw_data()) + static_cast<size_t>(from_t) * row, src_pitch,
              static_cast<size_t>(count) * row, from.size(0), from.device());
}

Tensor append_time(const Tensor& a, const Tensor& b) {
  if (!a.defined() || a.size(1) == 0) return b;
  Tensor out = Tensor::empty(with_time(b, a.size(1) + b.size(1)), b.dtype(), b.device());
  copy_time(a, 0, out, 0, a.size(1));
  copy_time(b, 0, out, a.size(1), b.size(1));
  return out;
}

Tensor last_rows(const Tensor& x, int64_t n) {
  if (n < 0 || n >= x.size(1)) return x;
  Tensor out = Tensor::empty(with_time(x, n), x.dtype(), x.device());
  copy_time(x, x.size(1) - n, out, 0, n);
  return out;
}

void add_time(const Tensor& from, const Tensor& to, int64_t to_t) {
  const int64_t n = from.size(1);
  Tensor part = Tensor::empty(from.shape(), to.dtype(), to.device());
  copy_time(to, to_t, part, 0, n);
  copy_time(add(part, from), 0, to, to_t, n);
}

}  // namespace eat
