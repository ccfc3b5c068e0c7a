// Titans' linear memory on the device: not yet written; the op refuses to run on CUDA.
#include "base/error.h"
#include "kernels/linear_memory.h"
#include "base/dtype.h"

namespace eat::cuda {

template <typename T>
void linear_memory_forward(const HeadShape&, const LinearMemoryArgs&, const T*, const T*, const T*, const T*,
                           const T*, const T*, const float*, const float*, T*, float*, float*, float*) {
  fail("linear_memory: no CUDA kernel yet");
}
template <typename T>
void linear_memory_backward(const HeadShape&, const LinearMemoryArgs&, const T*, const T*, const T*, const T*,
                            const T*, const T*, const float*, const T*, const float*, const float*, T*, T*, T*, T*,
                            T*, T*, float*, float*) {
  fail("linear_memory: no CUDA kernel yet");
}

EAT_LINEAR_MEMORY_INSTANTIATE(float)
EAT_LINEAR_MEMORY_INSTANTIATE(bf16)

}  // namespace eat::cuda
