#include "kernels/cpu/attention_naive.h"
#include "kernels/cpu/parallel.h"

#include <Eigen/Core>
#include <cmath>
#include <limits>

namespace eat::cpu {

namespace {

template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// One head's rows inside a [B, T, H, width] tensor: consecutive tokens are H*width apart.
template <typename T>
using HeadRows = Eigen::Map<RowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstHeadRows = Eigen::Map<const RowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <typename T>
ConstHeadRows<T> head_rows(const T* base, int64_t seq, int64_t width, int64_t stride) {
  return ConstHeadRows<T>(base, seq, width, Eigen::OuterStride<>(stride));
}
template <typename T>
HeadRows<T> head_rows(T* base, int64_t seq, int64_t width, int64_t stride) {
  return HeadRows<T>(base, seq, width, Eigen::OuterStride<>(stride));
}

// P = softmax(scale * Q K^T) row by row over each query's keys: the persistent rows [0, prefix)
// and the band of sequence keys (rows shifted by the prefix); entries outside them are exactly
// zero, so later products need no mask. P is seq x key_rows.
template <typename T>
void attention_probabilities(const ConstHeadRows<T>& Q, const ConstHeadRows<T>& K, const AttentionDims& dims,
                             RowMajor<T>& P) {
  const int64_t n = dims.seq, m = dims.key_rows(), prefix = dims.prefix;
  const T scale = static_cast<T>(dims.scale);
  P.resize(n, m);
  P.noalias() = Q * K.transpose();
  for (int64_t t = 0; t < n; ++t) {
    const int64_t lo = prefix + dims.first_key(t), hi = prefix + dims.last_key(t) + 1;
    T* row = P.data() + t * m;
    // f on every attended entry, the persistent keys first.
    auto attended = [&](auto&& f) {
      for (int64_t j = 0; j < prefix; ++j) f(row[j]);
      for (int64_t j = lo; j < hi; ++j) f(row[j]);
    };
    T mx = -std::numeric_limits<T>::infinity();
    attended([&](T& x) {
      x *= scale;
      mx = std::max(mx, x);
    });
    T total = 0;
    attended([&](T& x) {
      x = std::exp(x - mx);
      total += x;
    });
    for (int64_t j = prefix; j < lo; ++j) row[j] = 0;
    attended([&](T& x) { x /= total; });
    for (int64_t j = hi; j < m; ++j) row[j] = 0;
  }
}

}  // namespace

template <typename T>
void attention_naive_forward(const T* q, const T* k, const T* v, T* out, const AttentionDims& dims) {
  const int64_t n = dims.seq, m = dims.key_rows(), heads = dims.batch * dims.heads;
  // (batch, head) pairs are independent: each thread owns whole heads, so no result depends on
  // the thread count.
#pragma omp parallel if(parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len()))
  {
    RowMajor<T> P;
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < heads; ++bh) {
      const int64_t b = bh / dims.heads, h = bh % dims.heads;
      auto Q = head_rows(q + dims.qk_offset(b, h), n, dims.qk_dim, dims.qk_row_stride());
      auto K = head_rows(k + dims.key_offset(b, h), m, dims.qk_dim, dims.qk_row_stride());
      auto V = head_rows(v + dims.value_offset(b, h), m, dims.v_dim, dims.v_row_stride());
      auto O = head_rows(out + dims.v_offset(b, h), n, dims.v_dim, dims.v_row_stride());
      attention_probabilities(Q, K, dims, P);
      O.noalias() = P * V;
    }
  }
}

template <typename T>
void attention_naive_backward(const T* q, const T* k, const T* v, const T* dout, T* dq, T* dk, T* dv,
                              const AttentionDims& dims) {
  const int64_t n = dims.seq, m = dims.key_rows(), heads = dims.batch * dims.heads;
  const T scale = static_cast<T>(dims.scale);
#pragma omp parallel if(parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len()))
  {
    RowMajor<T> P, dS;
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < heads; ++bh) {
      const int64_t b = bh / dims.heads, h = bh % dims.heads;
      const int64_t qk_off = dims.qk_offset(b, h), v_off = dims.v_offset(b, h);
      const int64_t k_off = dims.key_offset(b, h), kv_off = dims.value_offset(b, h);
      const int64_t qk_stride = dims.qk_row_stride(), v_stride = dims.v_row_stride();
      auto Q = head_rows(q + qk_off, n, dims.qk_dim, qk_stride);
      auto K = head_rows(k + k_off, m, dims.qk_dim, qk_stride);
      auto V = head_rows(v + kv_off, m, dims.v_dim, v_stride);
      auto dO = head_rows(dout + v_off, n, dims.v_dim, v_stride);
      attention_probabilities(Q, K, dims, P);
      if (dv) head_rows(dv + kv_off, m, dims.v_dim, v_stride).noalias() = P.transpose() * dO;
      if (!dq && !dk) continue;
      // Softmax backward row by row: dS = P * (dP - sum_j P dP), with dP = dO V^T.
      dS.resize(n, m);
      dS.noalias() = dO * V.transpose();
      for (int64_t t = 0; t < n; ++t) {
        const T* p = P.data() + t * m;
        T* g = dS.data() + t * m;
        T dot = 0;
        for (int64_t j = 0; j < m; ++j) dot += p[j] * g[j];
        for (int64_t j = 0; j < m; ++j) g[j] = p[j] * (g[j] - dot);
      }
      // S = scale * Q K^T, so the scale comes back in both input gradients.
      if (dq) head_rows(dq + qk_off, n, dims.qk_dim, qk_stride).noalias() = scale * (dS * K);
      if (dk) head_rows(dk + k_off, m, dims.qk_dim, qk_stride).noalias() = scale * (dS.transpose() * Q);
    }
  }
}

#define EAT_INSTANTIATE(T)                                                                                   \
  template void attention_naive_forward<T>(const T*, const T*, const T*, T*, const AttentionDims&);          \
  template void attention_naive_backward<T>(const T*, const T*, const T*, const T*, T*, T*, T*,              \
                                            const AttentionDims&);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
