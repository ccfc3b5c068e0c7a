#pragma once
// Cross-entropy fused with log-softmax over rows of [N, V] logits. Row statistics in double.
#include <cstdint>

namespace eat::cpu {

// Writes each row's log-sum-exp and returns the sum of -log p[target] over rows whose target is
// not ignore_index (summed in row order), and their count in *count.
template <typename T>
double cross_entropy_forward(const T* logits, const int64_t* targets, double* lse, int64_t N, int64_t V,
                             int64_t ignore_index, int64_t* count);
// dlogits = (softmax - onehot(target)) * scale; zero rows where the target is ignored.
template <typename T>
void cross_entropy_backward(const T* logits, const int64_t* targets, const double* lse, double scale, T* dlogits, int64_t N,
                            int64_t V, int64_t ignore_index);

}  // namespace eat::cpu
