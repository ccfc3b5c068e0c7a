#include "kernels/adamw.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace eat::cpu {

namespace {

// Elements per task of a whole-model update: every parameter is cut into pieces of this size (its
// last one shorter), and the pieces of all parameters are spread over the threads together.
constexpr int64_t kPiece = int64_t{1} << 14;
// Elements per block of a sum of squares; a block's sum does not depend on the threads.
constexpr int64_t kSquaresBlock = 4096;

// Elements [begin, end) of one tensor's update.
template <typename T>
void update_range(const AdamWTensor<T>& t, T gs, int64_t begin, int64_t end) {
  const AdamWStep& s = t.step;
  const T lr = static_cast<T>(s.lr), b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T decay = static_cast<T>(1.0 - s.lr * s.weight_decay);
  const T bc1 = static_cast<T>(1.0 - std::pow(s.beta1, static_cast<double>(s.t)));
  // 1 / sqrt(1 - beta2^t), so that v's correction is a multiply: the update is bound by the
  // divider (a division and a square root share it), and a second division made it 1.3x slower.
  const T inv_bc2_sqrt = static_cast<T>(1.0 / std::sqrt(1.0 - std::pow(s.beta2, static_cast<double>(s.t))));
  const T step = lr / bc1, eps = static_cast<T>(s.eps);
  T *param = t.param, *m = t.m, *v = t.v;
  const T* grad = t.grad;
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const T g = grad[i] * gs;
    const T mi = b1 * m[i] + (T(1) - b1) * g;
    const T vi = b2 * v[i] + (T(1) - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step * mi / (std::sqrt(vi) * inv_bc2_sqrt + eps);
  }
}

// Pieces of `piece` elements of arrays of sizes ns: (array, first element) of each, and the total.
struct Pieces {
  std::vector<std::pair<size_t, int64_t>> starts;
  int64_t total = 0;
};

Pieces cut(const std::vector<int64_t>& ns, int64_t piece) {
  Pieces p;
  for (size_t i = 0; i < ns.size(); ++i) {
    for (int64_t b = 0; b < ns[i]; b += piece) p.starts.emplace_back(i, b);
    p.total += ns[i];
  }
  return p;
}

}  // namespace

template <typename T>
void adamw_update_all(const std::vector<AdamWTensor<T>>& tensors, double grad_scale) {
  std::vector<int64_t> ns;
  for (const AdamWTensor<T>& t : tensors) ns.push_back(t.n);
  const Pieces pieces = cut(ns, kPiece);
  const T gs = static_cast<T>(grad_scale);
  const auto count = static_cast<int64_t>(pieces.starts.size());
#pragma omp parallel for schedule(static) if(parallel_worth(pieces.total))
  for (int64_t k = 0; k < count; ++k) {
    const auto [i, begin] = pieces.starts[static_cast<size_t>(k)];
    const AdamWTensor<T>& t = tensors[i];
    update_range(t, gs, begin, std::min(t.n, begin + kPiece));
  }
}

template <typename T>
void adamw_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamWStep& s, double grad_scale) {
  adamw_update_all<T>({{param, grad, m, v, n, s}}, grad_scale);
}

template <typename T>
void sums_of_squares(const std::vector<const T*>& xs, const std::vector<int64_t>& ns, double* sums) {
  const Pieces blocks = cut(ns, kSquaresBlock);
  const auto count = static_cast<int64_t>(blocks.starts.size());
  std::vector<double> partial(blocks.starts.size());
#pragma omp parallel for schedule(static) if(parallel_worth(blocks.total))
  for (int64_t k = 0; k < count; ++k) {
    const auto [i, begin] = blocks.starts[static_cast<size_t>(k)];
    const T* x = xs[i];
    // Eight running sums, element j into sum (j - begin) % 8, added in a fixed tree at the end:
    // one sum would be a chain of dependent double additions, about 4 cycles an element.
    const int64_t end = std::min(ns[i], begin + kSquaresBlock);
    double s[8] = {};
    int64_t j = begin;
    for (; j + 8 <= end; j += 8)
      for (int l = 0; l < 8; ++l) s[l] += static_cast<double>(x[j + l]) * static_cast<double>(x[j + l]);
    for (int l = 0; j < end; ++j, ++l) s[l] += static_cast<double>(x[j]) * static_cast<double>(x[j]);
    partial[static_cast<size_t>(k)] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  }
  std::fill(sums, sums + xs.size(), 0.0);
  for (size_t k = 0; k < partial.size(); ++k) sums[blocks.starts[k].first] += partial[k];  // block order
}

template <typename T>
double sum_of_squares(const T* x, int64_t n) {
  double sum = 0;
  sums_of_squares<T>({x}, {n}, &sum);
  return sum;
}

#define EAT_INSTANTIATE(T)                                                                          \
  template void adamw_update<T>(T*, const T*, T*, T*, int64_t, const AdamWStep&, double);          \
  template void adamw_update_all<T>(const std::vector<AdamWTensor<T>>&, double);                   \
  template double sum_of_squares<T>(const T*, int64_t);                                             \
  template void sums_of_squares<T>(const std::vector<const T*>&, const std::vector<int64_t>&, double*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
