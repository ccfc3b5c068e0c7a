#pragma once
// Dispatch from a Tensor-level op to a kernel.
// A kernel family declared for both backends in its device-neutral header (kernels/backends.h)
// is called once, by name, with arguments that may use the element type T:
//   EAT_KERNEL("softmax", x, softmax_forward, x.data<T>(), y.data<T>(), rows, cols);
// runs cpu::softmax_forward<T> (T = float or double) or, on a CUDA tensor, cuda::softmax_forward<T>
// (T = float or eat::bf16 storage), under the op's profiler scope.
// Ops whose devices run different kernels (a CPU reference with no device twin, device scratch,
// a host-side step) spell out both with templated lambdas; the CUDA lambda is wrapped in
// EAT_CUDA(...) so that a build without CUDA never sees it:
//   dispatch("attention", q,
//            [&]<typename T>() { cpu::attention_tiled_forward<T>(...); },
//            EAT_CUDA([&]<typename T>() { cuda::attention_flash_forward<T>(...); }));
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

// A tensor's data, or null when the tensor is undefined (an optional input, an unwanted gradient).
template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// A gradient buffer shaped like `like` when it is wanted, else undefined (its kernel output null).
inline Tensor empty_like_if(bool wanted, const Tensor& like) { return wanted ? Tensor::empty_like(like) : Tensor(); }

#ifdef EAT_WITH_CUDA
#define EAT_CUDA(...) __VA_ARGS__
#define EAT_CUDA_BRANCH(...) __VA_ARGS__
#else
#define EAT_CUDA(...) ::eat::NoCudaKernel{}
#define EAT_CUDA_BRANCH(...) ::eat::fail("this eat was built without CUDA")
#endif

// The backend an op body runs on, for ops that call several kernels under one profiler scope.
enum class Backend { cpu, cuda };

// Runs f.template operator()<B, T>() with B the backend of like's device and T its element type;
// inside, EAT_ON(B, kernel, args...) calls one kernel declared for both backends.
template <typename F>
void dispatch_backend(const char* op, const Tensor& like, F&& f) {
  dispatch(op, like, [&]<typename T>() { f.template operator()<Backend::cpu, T>(); },
           EAT_CUDA([&]<typename T>() { f.template operator()<Backend::cuda, T>(); }));
}

// Calls cpu::kernel<T> or cuda::kernel<T> as the (compile-time) backend B says; the other one is
// never instantiated, so a build without CUDA never references a CUDA kernel.
#define EAT_ON(B, kernel, ...)                   \
  do {                                           \
    if constexpr (B == ::eat::Backend::cpu)      \
      ::eat::cpu::kernel<T>(__VA_ARGS__);        \
    else                                         \
      ::eat::cuda::kernel<T>(__VA_ARGS__);       \
  } while (0)

// One call of a kernel declared for both backends: `op` names the profiler scope and the errors,
// `like` picks the device and the element type T the arguments may use.
#define EAT_KERNEL(op, like, kernel, ...)                                                   \
  ::eat::dispatch(                                                                          \
      op, like, [&]<typename T>() { ::eat::cpu::kernel<T>(__VA_ARGS__); },                  \
      EAT_CUDA([&]<typename T>() { ::eat::cuda::kernel<T>(__VA_ARGS__); }))

}  // namespace eat
