#pragma once
// The GPU's dense matmul peak for a compute type: the MFU denominator of device runs, so MFU is
// quoted against what the tensor cores could do in that precision, as papers quote it.
#include <string>

#include "base/dtype.h"

namespace eat {

struct DevicePeak {
  double gflops = 0;
  std::string source;  // "NVIDIA H100 80GB HBM3, bf16 dense datasheet peak" or "measured 8192^3 bf16 cuBLAS GEMM"
};

// bf16, or f32 (TF32 tensor cores when tf32 is set). Datasheet dense peaks for the H100 (SXM and
// PCIe), H200 and A100 by device name; any other GPU gets the best of a few measured cuBLAS
// GEMMs, which understates its peak (so MFU errs high) but never by an arbitrary guess.
// An error in a build without CUDA.
DevicePeak device_peak_gflops(DType compute, bool tf32);

}  // namespace eat
