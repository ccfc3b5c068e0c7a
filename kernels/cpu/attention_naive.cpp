// The reference attention: materialise the T x T scores of one (batch, head), mask, softmax.
#include <cmath>
#include <limits>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_common.h"

namespace eat::cpu {

using namespace attention_detail;

namespace {

// P = softmax(mask(scale Q K^T)) for one (b, h).
template <typename T>
Mat<T> probabilities(const AttentionShape& s, const T* q, const T* k, int64_t b, int64_t h) {
  Mat<T> S = T(s.scale) * (head_rows(q, s, b, h, 0, s.T, s.d) * head_rows(k, s, b, h, 0, s.T, s.d).transpose());
  for (int64_t t = 0; t < s.T; ++t) {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < s.T; ++j)
      if (allowed(s, t, j)) m = std::max(m, S(t, j));
    T sum = 0;
    for (int64_t j = 0; j < s.T; ++j) {
      S(t, j) = allowed(s, t, j) ? std::exp(S(t, j) - m) : T(0);
      sum += S(t, j);
    }
    S.row(t) /= sum;
  }
  return S;
}

}  // namespace

template <typename T>
void attention_naive_forward(const AttentionShape& s, const T* q, const T* k, const T* v, T* o) {
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    Mat<T> P = probabilities(s, q, k, b, h);
    head_rows(o, s, b, h, 0, s.T, s.e).noalias() = P * head_rows(v, s, b, h, 0, s.T, s.e);
  }
}

template <typename T>
void attention_naive_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* dout, T* dq, T* dk, T* dv) {
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    Mat<T> P = probabilities(s, q, k, b, h);
    auto dO = head_rows(dout, s, b, h, 0, s.T, s.e);
    head_rows(dv, s, b, h, 0, s.T, s.e).noalias() = P.transpose() * dO;
    Mat<T> dP = dO * head_rows(v, s, b, h, 0, s.T, s.e).transpose();
    // dS = P * (dP - rowsum(P * dP)): the softmax Jacobian applied row by row.
    Eigen::Matrix<T, Eigen::Dynamic, 1> rowdot = (P.array() * dP.array()).rowwise().sum();
    Mat<T> dS = P.array() * (dP.colwise() - rowdot).array();
    head_rows(dq, s, b, h, 0, s.T, s.d).noalias() = T(s.scale) * (dS * head_rows(k, s, b, h, 0, s.T, s.d));
    head_rows(dk, s, b, h, 0, s.T, s.d).noalias() = T(s.scale) * (dS.transpose() * head_rows(q, s, b, h, 0, s.T, s.d));
  }
}

#define EAT_INSTANTIATE(T)                                                                              \
  template void attention_naive_forward<T>(const AttentionShape&, const T*, const T*, const T*, T*); \
  template void attention_naive_backward<T>(const AttentionShape&, const T*, const T*, const T*, const T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
