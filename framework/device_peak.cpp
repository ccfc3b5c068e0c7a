#include "framework/device_peak.h"

#include <algorithm>
#include <chrono>

#include "base/error.h"
#include "framework/tensor.h"
#ifdef EAT_WITH_CUDA
#include <cuda_runtime_api.h>

#include "kernels/matmul.h"
#include "runtime/cuda/stream.h"
#endif

namespace eat {

#ifdef EAT_WITH_CUDA
namespace {

struct Datasheet {
  const char* name_part;  // matched against cudaDeviceProp::name, first match wins
  double bf16, tf32, f32;  // dense TFLOP/s (no structured sparsity)
};

// NVIDIA's published dense peaks. The PCIe H100 is listed before the generic "H100" (SXM).
constexpr Datasheet kDatasheets[] = {
    {"H100 PCIe", 756.0, 378.0, 51.2},
    {"H100", 989.0, 494.5, 66.9},
    {"H200", 989.0, 494.5, 66.9},
    {"A100", 312.0, 156.0, 19.5},
};

template <typename T>
double measure_gemm_gflops(DType dtype, int64_t n, int reps) {
  Tensor a = Tensor::zeros({n, n}, dtype, Device::cuda), b = Tensor::zeros({n, n}, dtype, Device::cuda);
  Tensor c = Tensor::empty({n, n}, dtype, Device::cuda);
  auto run = [&] { cuda::gemm<T>(a.data<T>(), b.data<T>(), c.data<T>(), n, n, n, false, false, false); };
  run();  // warm-up: cuBLAS handle and workspace
  cuda::sync_compute();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    cuda::sync_compute();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * static_cast<double>(n) * n * n / best / 1e9;
}

}  // namespace
#endif

DevicePeak device_peak_gflops(DType compute, bool tf32) {
  EAT_CHECK(compute == DType::bf16 || compute == DType::f32, "device peak: compute type must be bf16 or f32, got ",
            dtype_name(compute));
#ifdef EAT_WITH_CUDA
  cudaDeviceProp prop{};
  int device = 0;
  EAT_CHECK(cudaGetDevice(&device) == cudaSuccess && cudaGetDeviceProperties(&prop, device) == cudaSuccess,
            "device peak: cannot query the CUDA device");
  const std::string name = prop.name;
  const char* kind = compute == DType::bf16 ? "bf16" : tf32 ? "tf32" : "f32";
  for (const Datasheet& d : kDatasheets) {
    if (name.find(d.name_part) == std::string::npos) continue;
    const double tflops = compute == DType::bf16 ? d.bf16 : tf32 ? d.tf32 : d.f32;
    return {tflops * 1e3, name + ", " + kind + " dense datasheet peak"};
  }
  const bool saved = cuda::allow_tf32();
  cuda::set_allow_tf32(tf32);
  constexpr int64_t n = 8192;
  const double gflops = compute == DType::bf16 ? measure_gemm_gflops<bf16>(compute, n, 3)
                                               : measure_gemm_gflops<float>(compute, n, 3);
  cuda::set_allow_tf32(saved);
  return {gflops, name + ", measured " + std::to_string(n) + "^3 " + kind + " cuBLAS GEMM"};
#else
  (void)tf32;
  fail("device peak: this eat was built without CUDA");
#endif
}

}  // namespace eat
