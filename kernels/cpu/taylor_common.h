#pragma once
// Shared by the three CPU forms of Taylor linear attention (kernels/taylor_attention.h): one
// head's rows as contiguous matrices, the feature map and its gradient, the causal score tiles
// and their backward, and the step between the augmented output [N | Z] and y.
#include <Eigen/Dense>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/lightning_common.h"
#include "kernels/cpu/parallel.h"
#include "kernels/taylor_attention.h"

namespace eat::cpu::taylor_detail {

using lightning_detail::head_rows;
using lightning_detail::Mat;

// One head's view of the problem: f (feature) and e (value) widths, D' features, E = e + 1.
struct Head {
  HeadShape s;
  TaylorKernelArgs a;
  int64_t D, E;
  Head(const HeadShape& shape, const TaylorKernelArgs& args)
      : s(shape), a(args), D(taylor_feature_dim(shape.d)), E(shape.e + 1) {}
  int64_t state_size() const { return D * E; }
};

// Rows [t0, t0 + L) of head h in batch b of a [B, T, H, width] tensor, as a contiguous matrix.
template <typename T>
Mat<T> rows_of(const T* base, const HeadShape& s, int64_t b, int64_t h, int64_t t0, int64_t L, int64_t width) {
  return head_rows(base, s, b, h, t0, L, width);
}

// The value rows extended by a column of ones: [v | 1], L x (e + 1).
template <typename T>
Mat<T> values_with_ones(const T* v, const HeadShape& s, int64_t b, int64_t h, int64_t t0, int64_t L) {
  Mat<T> out(L, s.e + 1);
  out.leftCols(s.e) = head_rows(v, s, b, h, t0, L, s.e);
  out.col(s.e).setOnes();
  return out;
}

// The feature map's constants: phi(x) = [1, x c1, x_a x_b c_ab] with c_ab = c2 (a < b), c_aa = c2 / sqrt(2).
template <typename T>
struct FeatureScale {
  T c1, c2, c_diag;
  explicit FeatureScale(int64_t f)
      : c1(static_cast<T>(1.0 / std::pow(static_cast<double>(f), 0.25))),
        c2(static_cast<T>(1.0 / std::sqrt(static_cast<double>(f)))),
        c_diag(static_cast<T>(1.0 / std::sqrt(2.0 * static_cast<double>(f)))) {}
};

// phi of every row of x (L x f): L x D'.
template <typename T>
Mat<T> features(const Mat<T>& x) {
  const int64_t L = x.rows(), f = x.cols();
  const FeatureScale<T> c(f);
  Mat<T> out(L, taylor_feature_dim(f));
  for (int64_t r = 0; r < L; ++r) {
    out(r, 0) = T(1);
    for (int64_t p = 0; p < f; ++p) out(r, 1 + p) = x(r, p) * c.c1;
    int64_t i = 1 + f;
    for (int64_t p = 0; p < f; ++p) {
      out(r, i++) = x(r, p) * x(r, p) * c.c_diag;
      for (int64_t q = p + 1; q < f; ++q) out(r, i++) = x(r, p) * x(r, q) * c.c2;
    }
  }
  return out;
}

// dx += (d phi / dx)^T g for every row: g (L x D') is the gradient of features(x).
template <typename T>
void add_feature_grad(const Mat<T>& x, const Mat<T>& g, Mat<T>& dx) {
  const int64_t L = x.rows(), f = x.cols();
  const FeatureScale<T> c(f);
  for (int64_t r = 0; r < L; ++r) {
    for (int64_t p = 0; p < f; ++p) dx(r, p) += g(r, 1 + p) * c.c1;
    int64_t i = 1 + f;
    for (int64_t p = 0; p < f; ++p) {
      dx(r, p) += T(2) * c.c_diag * g(r, i++) * x(r, p);
      for (int64_t q = p + 1; q < f; ++q) {
        const T gpq = g(r, i++) * c.c2;
        dx(r, p) += gpq * x(r, q);
        dx(r, q) += gpq * x(r, p);
      }
    }
  }
}

// The score tile of query rows qi (starting at token ti) against key rows kj (starting at tj):
// A = 1 + s + s^2 / 2 with s = qi kj^T / sqrt(f), zero where the key comes after the query.
// one_plus_s, when not null, receives 1 + s (the backward's dA/ds), also masked.
template <typename T>
Mat<T> scores(const Mat<T>& qi, int64_t ti, const Mat<T>& kj, int64_t tj, Mat<T>* one_plus_s = nullptr) {
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(qi.cols())));
  Mat<T> s = (qi * kj.transpose()) * scale;
  Mat<T> a(s.rows(), s.cols());
  for (int64_t r = 0; r < s.rows(); ++r)
    for (int64_t c = 0; c < s.cols(); ++c) {
      const bool visible = tj + c <= ti + r;
      const T x = visible ? s(r, c) : T(0);
      a(r, c) = visible ? T(1) + x + T(0.5) * x * x : T(0);
      s(r, c) = visible ? T(1) + x : T(0);
    }
  if (one_plus_s) *one_plus_s = std::move(s);
  return a;
}

// The backward of out_i += A(qi, kj) v'_j for one tile: dq_i, dk_j, dv'_j accumulate.
template <typename T>
void tile_backward(const Mat<T>& qi, int64_t ti, const Mat<T>& kj, int64_t tj, const Mat<T>& vj, const Mat<T>& dout_i,
                   Mat<T>* dqi, Mat<T>* dkj, Mat<T>* dvj) {
  Mat<T> one_plus_s;
  const Mat<T> a = scores(qi, ti, kj, tj, &one_plus_s);
  if (dvj) dvj->noalias() += a.transpose() * dout_i;
  if (!dqi && !dkj) return;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(qi.cols())));
  // dA = dout v'^T on the visible entries; ds = dA (1 + s), already zero where masked.
  Mat<T> ds = ((dout_i * vj.transpose()).array() * one_plus_s.array() * scale).matrix();
  if (dqi) dqi->noalias() += ds * kj;
  if (dkj) dkj->noalias() += ds.transpose() * qi;
}

// Writes y for rows [t0, t0 + L) of head (b, h) from the augmented output [N | Z] (L x (e + 1)),
// and Z + eps to the denominator when normalising; with args.sums, [N | Z] itself.
template <typename T>
void write_outputs(const Head& P, const Mat<T>& out, int64_t b, int64_t h, int64_t t0, T* y, RowStat* denominator) {
  const HeadShape& s = P.s;
  if (P.a.sums) {
    head_rows(y, s, b, h, t0, out.rows(), P.E) = out;
    return;
  }
  auto dst = head_rows(y, s, b, h, t0, out.rows(), s.e);
  for (int64_t r = 0; r < out.rows(); ++r) {
    if (P.a.normalize) {
      const RowStat z = static_cast<RowStat>(out(r, s.e)) + static_cast<RowStat>(P.a.eps);
      denominator[(b * s.T + t0 + r) * s.H + h] = z;
      dst.row(r) = out.row(r).leftCols(s.e) / static_cast<T>(z);
    } else {
      dst.row(r) = out.row(r).leftCols(s.e);
    }
  }
}

// The gradient of the augmented output [N | Z] for rows [t0, t0 + L): normalising,
// dN = dy / (Z + eps) and dZ = -(dy . y) / (Z + eps); otherwise dN = dy, dZ = 0; with args.sums,
// dy is that gradient.
template <typename T>
Mat<T> output_grad(const Head& P, const T* y, const RowStat* denominator, const T* dy, int64_t b, int64_t h, int64_t t0,
                   int64_t L) {
  const HeadShape& s = P.s;
  if (P.a.sums) return head_rows(dy, s, b, h, t0, L, P.E);
  Mat<T> g(L, P.E);
  g.leftCols(s.e) = head_rows(dy, s, b, h, t0, L, s.e);
  if (!P.a.normalize) {
    g.col(s.e).setZero();
    return g;
  }
  const auto yr = head_rows(y, s, b, h, t0, L, s.e);
  for (int64_t r = 0; r < L; ++r) {
    const T inv = static_cast<T>(1.0 / denominator[(b * s.T + t0 + r) * s.H + h]);
    g(r, s.e) = -g.row(r).leftCols(s.e).dot(yr.row(r)) * inv;
    g.row(r).leftCols(s.e) *= inv;
  }
  return g;
}

// Writes rows of a per-head gradient (L x width; for values the first e of its e + 1 columns).
template <typename T>
void write_rows(const Mat<T>& g, T* base, const HeadShape& s, int64_t b, int64_t h, int64_t t0, int64_t width) {
  if (base) head_rows(base, s, b, h, t0, g.rows(), width) = g.leftCols(width);
}

// The (D' x (e + 1)) state of flat (batch, head) index bh, or zero when there is none.
template <typename T>
Mat<T> state_or_zero(const T* base, const Head& P, int64_t bh) {
  if (!base) return Mat<T>::Zero(P.D, P.E);
  return Eigen::Map<const Mat<T>>(base + bh * P.state_size(), P.D, P.E);
}
template <typename T>
void store_state(const Mat<T>& st, T* base, const Head& P, int64_t bh) {
  if (base) Eigen::Map<Mat<T>>(base + bh * P.state_size(), P.D, P.E) = st;
}

// Runs f(b, h) for every head, spread over threads when the work is worth it; each head's
// results are written by one thread in a fixed order, so the outputs do not depend on the
// thread count.
template <typename F>
void for_each_head(const HeadShape& s, int64_t work, F&& f) {
  const int64_t heads = s.B * s.H;
#pragma omp parallel for schedule(dynamic, 1) if (parallel_worth(work) && heads > 1)
  for (int64_t bh = 0; bh < heads; ++bh) f(bh / s.H, bh % s.H);
}

}  // namespace eat::cpu::taylor_detail
