#pragma once
// Cross-entropy fused with log-softmax over rows of [N, V] logits. The devices differ in where the
// loss lands: the CPU returns it to the host (row statistics in double); the device keeps it on the
// device (row statistics and the loss in f32), and since the number of counted rows is known on
// the host (the targets are read there), the caller passes its inverse. Targets are int64 arrays
// on the kernel's device.
#include <cstdint>

namespace eat {

namespace cpu {
// Writes each row's log-sum-exp and returns the sum of -log p[target] over rows whose target is
// not ignore_index (summed in row order), and their count in *count.
template <typename T>
double cross_entropy_forward(const T* logits, const int64_t* targets, double* lse, int64_t N, int64_t V,
                             int64_t ignore_index, int64_t* count);
// dlogits = (softmax - onehot(target)) * scale; zero rows where the target is ignored.
template <typename T>
void cross_entropy_backward(const T* logits, const int64_t* targets, const double* lse, double scale, T* dlogits, int64_t N,
                            int64_t V, int64_t ignore_index);
}  // namespace cpu

namespace cuda {
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
}  // namespace cuda

}  // namespace eat
