#pragma once
// doctest-side helpers of the gpu suite on top of gpu_compare.h: run a check for each CUDA storage
// type, build the CPU reference's input from the same rounded values, and compare after the
// compute stream has finished. (Tensor-level ops against the CPU: test_op_table_cuda.cpp.)
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "framework/dispatch.h"
#include "base/random.h"
#include "gpu/gpu_compare.h"
#include "runtime/cuda/stream.h"

namespace eat::test {

// Calls f.template operator()<T>(dtype) for T = float (f32) and eat::bf16.
template <typename F>
void for_cuda_dtypes(F&& f) {
  for (DType dt : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dt));
    dispatch_cuda_floating("test", dt, [&]<typename T>() { f.template operator()<T>(dt); });
  }
}

// host's values rounded to dtype and held in f32 on the CPU: what the CPU kernel is given when the
// device computes on the dtype copy of host.
inline Tensor rounded(const Tensor& host, DType dtype) { return host.to(dtype).to(DType::f32); }

// Normal random f32 host tensor, not rounded through any dtype (random_rounded in gpu_compare.h is);
// the stddev keeps values away from zero-only inputs.
inline Tensor random_host(const Shape& shape, Generator& gen, double stddev = 1.0) {
  return Tensor::randn(shape, gen, stddev, DType::f32);
}

// Waits for the device, then checks rel_error(out, ref) < tol (the suite's tolerance(dtype) unless
// given) and nothing else.
inline void check_rel_error(const Tensor& out, const Tensor& ref, DType dtype, const std::string& what, double tol) {
  cuda::sync_compute();
  const double err = rel_error(out, ref);
  CHECK_MESSAGE(err < tol, what, " (", dtype_name(dtype), "): relative error ", err, " >= ", tol);
}
inline void check_rel_error(const Tensor& out, const Tensor& ref, DType dtype, const std::string& what) {
  check_rel_error(out, ref, dtype, what, tolerance(dtype));
}

// check_rel_error after requiring a defined device result of ref's shape.
inline void check_close(const Tensor& out, const Tensor& ref, DType dtype, const std::string& what, double tol) {
  REQUIRE_MESSAGE(out.defined(), what, ": no result");
  CHECK_MESSAGE(out.device() == Device::cuda, what, ": result is not on the device");
  CHECK_MESSAGE(out.shape() == ref.shape(), what, ": shape ", shape_str(out.shape()), " vs ", shape_str(ref.shape()));
  check_rel_error(out, ref, dtype, what, tol);
}
inline void check_close(const Tensor& out, const Tensor& ref, DType dtype, const std::string& what) {
  check_close(out, ref, dtype, what, tolerance(dtype));
}

}  // namespace eat::test
