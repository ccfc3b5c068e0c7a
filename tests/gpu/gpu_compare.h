#pragma once
// Helpers for comparing a CUDA kernel with its CPU kernel: inputs are random (never zeros),
// device outputs are poisoned with NaN before the kernel runs so an unwritten element fails,
// and the error is the relative norm ||out - ref|| / ||ref|| computed in f64.
#include <cmath>
#include <limits>
#include <vector>

#include "base/random.h"
#include "framework/tensor.h"
#include "rel_error.h"

namespace eat::test {

// A device tensor of the given shape and dtype whose every element is NaN.
inline Tensor poisoned_device(const Shape& shape, DType dtype) {
  Tensor host = Tensor::full(shape, std::numeric_limits<double>::quiet_NaN(), dtype);
  return host.to(Device::cuda);
}

// host (any float dtype) converted to dtype and copied to the device.
inline Tensor to_device(const Tensor& host, DType dtype) { return host.to(dtype).to(Device::cuda); }

// Random host values in f32, rounded through `dtype` first (bf16 cases compare the CUDA kernel with
// the CPU f32 kernel on the same rounded inputs, so only the kernels' arithmetic differs). The
// unrounded draw is random_host in gpu_check.h.
inline Tensor random_rounded(const Shape& shape, Generator& gen, DType dtype, double stddev = 1.0) {
  return Tensor::randn(shape, gen, stddev).to(dtype).to(DType::f32);
}

// Leaves `copies` NaN-filled device blocks of each shape in the caching allocator's free list, so
// that tensors of those sizes which an op allocates next start as NaN: an output element the
// op never writes then fails the comparison even when the op allocates its outputs itself.
inline void poison_allocator_cache(const std::vector<Shape>& shapes, DType dtype, int copies = 2) {
  std::vector<Tensor> held;
  for (const Shape& shape : shapes)
    for (int i = 0; i < copies; ++i) held.push_back(poisoned_device(shape, dtype));
}  // released here, in the cache

// Tolerances of the gpu suite: f32 kernels against the CPU f32 kernel, bf16 against CPU f32.
inline double tolerance(DType dtype) { return dtype == DType::bf16 ? 1e-2 : 1e-5; }

}  // namespace eat::test
