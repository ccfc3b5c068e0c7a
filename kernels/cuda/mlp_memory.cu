// Titans' MLP memory on the GPU (kernels/mlp_memory.h): not written yet; the op runs on the CPU.
#include "base/dtype.h"
#include "base/error.h"
#include "kernels/mlp_memory.h"

namespace eat::cuda {

template <typename T>
void mlp_memory_forward(const MlpMemoryShape&, const MlpMemoryArgs&, const T*, const T*, const T*, const T*, const T*,
                        const T*, const float*, const float*, const float*, const float*, T*, float*, float*, float*,
                        float*, float*) {
  fail("mlp_memory has no CUDA kernel yet; run it on the CPU");
}
template <typename T>
void mlp_memory_backward(const MlpMemoryShape&, const MlpMemoryArgs&, const T*, const T*, const T*, const T*,
                         const T*, const T*, const float*, const T*, const float*, const float*, const float*,
                         const float*, T*, T*, T*, T*, T*, T*, float*, float*, float*, float*) {
  fail("mlp_memory has no CUDA kernel yet; run it on the CPU");
}

EAT_MLP_MEMORY_INSTANTIATE(float)
EAT_MLP_MEMORY_INSTANTIATE(bf16)

}  // namespace eat::cuda
