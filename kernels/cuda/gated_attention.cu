// Placeholder until the device kernels land: the op refuses CUDA tensors.
#include "base/dtype.h"
#include "base/error.h"
#include "kernels/gated_attention.h"

namespace eat::cuda {

template <typename T>
void gated_attention_forward(const AttentionDims&, const T*, const T*, const T*, const T*, T*, RowStat*) {
  fail("gated_attention (CUDA): not implemented yet");
}
template <typename T>
void gated_attention_backward(const AttentionDims&, const T*, const T*, const T*, const T*, const T*, const RowStat*,
                              const T*, T*, T*, T*, T*) {
  fail("gated_attention (CUDA): not implemented yet");
}

#define EAT_INSTANTIATE(T)                                                                                           \
  template void gated_attention_forward<T>(const AttentionDims&, const T*, const T*, const T*, const T*, T*,        \
                                           RowStat*);                                                               \
  template void gated_attention_backward<T>(const AttentionDims&, const T*, const T*, const T*, const T*, const T*, \
                                            const RowStat*, const T*, T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(bf16)

}  // namespace eat::cuda
