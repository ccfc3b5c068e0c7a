#pragma once
// Dispatch from a Tensor-level op to a kernel. CPU kernels are templates on the scalar type and
// are called through a templated lambda: [&]<typename T>() { cpu::op_forward<T>(...); }.
// CUDA kernels take the tensors and handle their own dtypes.
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

// An op that so far has a CPU kernel only.
template <typename CpuFn>
void dispatch(const char* op, const Tensor& like, CpuFn&& cpu) {
  if (like.device() == Device::cpu) {
    dispatch_floating(op, like.dtype(), cpu);
  } else {
    fail(op, ": no CUDA kernel for this op yet (input ", like.describe(), ")");
  }
}

// An op with both kernels. The CUDA function is only compiled in when the build has CUDA.
#ifdef EAT_WITH_CUDA
#define EAT_CUDA_BRANCH(...) __VA_ARGS__
#else
#define EAT_CUDA_BRANCH(...) ::eat::fail("this eat was built without CUDA")
#endif

}  // namespace eat
