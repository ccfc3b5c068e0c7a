#pragma once
// Dispatch from a Tensor-level op to a kernel.
// CPU kernels are templates on the scalar type (f32, f64) and are called through a templated
// lambda: [&]<typename T>() { cpu::op_forward<T>(...); }.
// CUDA kernels are templates on the storage type (float, or eat::bf16 with f32 arithmetic inside)
// and are called the same way; the CUDA lambda is wrapped in EAT_CUDA(...) so that a build
// without CUDA never sees it:
//   dispatch("add", a,
//            [&]<typename T>() { cpu::add_forward<T>(...); },
//            EAT_CUDA([&]<typename T>() { cuda::add_forward<T>(..., cuda::compute_stream()); }));
#include "framework/profiler.h"
#include "framework/tensor.h"

namespace eat {

template <typename F>
void dispatch_floating(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f.template operator()<float>(); return;
    case DType::f64: f.template operator()<double>(); return;
    default: fail(op, ": CPU kernels run in f32 or f64, got ", dtype_name(dtype));
  }
}

// CUDA kernels store f32 or bf16 (bf16 arithmetic is done in f32 inside the kernel).
template <typename F>
void dispatch_cuda_floating(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f.template operator()<float>(); return;
    case DType::bf16: f.template operator()<bf16>(); return;
    default: fail(op, ": CUDA kernels run in f32 or bf16, got ", dtype_name(dtype));
  }
}

// Stands in for the CUDA lambda in a build without CUDA.
struct NoCudaKernel {
  template <typename T> void operator()() const {}
};

// An op with both kernels; `like` picks the device and the dtype.
template <typename CpuFn, typename CudaFn>
void dispatch(const char* op, const Tensor& like, CpuFn&& cpu, CudaFn&& cuda) {
  profiler::OpScope timed(op, like.device());
  if (like.device() == Device::cpu) {
    dispatch_floating(op, like.dtype(), cpu);
    return;
  }
#ifdef EAT_WITH_CUDA
  dispatch_cuda_floating(op, like.dtype(), cuda);
#else
  (void)cuda;
  fail(op, ": input ", like.describe(), " is on CUDA but this eat was built without CUDA");
#endif
}

#ifdef EAT_WITH_CUDA
#define EAT_CUDA(...) __VA_ARGS__
#define EAT_CUDA_BRANCH(...) __VA_ARGS__
#else
#define EAT_CUDA(...) ::eat::NoCudaKernel{}
#define EAT_CUDA_BRANCH(...) ::eat::fail("this eat was built without CUDA")
#endif

}  // namespace eat
