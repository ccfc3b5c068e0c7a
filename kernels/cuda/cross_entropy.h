#pragma once
// Cross-entropy fused with log-softmax over rows of [N, V] logits on the device
// (kernels/cpu/cross_entropy.h's counterpart). Row statistics and the loss are f32; targets are a
// device int64 array. The loss stays on the device: the number of counted rows is known on the
// host (the targets are read there), so the caller passes its inverse.
#include <cstdint>

namespace eat::cuda {

// Writes each row's log-sum-exp and loss[0] = inv_count * sum of -log p[target] over rows whose
// target is not ignore_index. row_loss [N] is scratch; the final sum runs over it in a fixed order.
template <typename T>
void cross_entropy_forward(const T* logits, const int64_t* targets, float* lse, float* row_loss, int64_t N, int64_t V,
                           int64_t ignore_index, float inv_count, T* loss);
// dlogits = (softmax - onehot(target)) * scale with scale = dloss[0] * inv_count read on the
// device; zero rows where the target is ignored.
template <typename T>
void cross_entropy_backward(const T* logits, const int64_t* targets, const float* lse, const T* dloss, float inv_count,
                            T* dlogits, int64_t N, int64_t V, int64_t ignore_index);

}  // namespace eat::cuda
