// Titans' linear memory on the CPU (kernels/linear_memory.h): one task per (batch, head), spread
// over threads by a static schedule; each walks its chunks in time order (forward) or in reverse
// (backward) with the d x e states in Eigen matrices. Backward per chunk, given the gradients dO
// of its outputs and dWb, dSb of its end state (titans.md 3.1), with A = tril(Q K^T),
// Ahat = G o A, B = G o tril(dO E^T):
//     dE  = -2 Ahat^T dO - 2 diag(g) K dWb - 2 diag(n) K dSb,   dV = -dE
//     dW0 = beta_L dWb + Q^T diag(beta) dO + K^T dE
//     dS0 = f_L dWb + m_L dSb + Q^T diag(f) dO
//     dQ  = diag(beta) dO W0^T + diag(f) dO S0^T - 2 B K
//     dK  = dE W0^T - 2 B^T Q - 2 diag(g) E dWb^T - 2 diag(n) E dSb^T
// and the gates' gradients go through kernels/cpu/memory_gates.h. Every task writes only its own
// rows and states in a fixed order and the shared-initial-state gradient is summed over the batch
// in batch order afterwards, so results do not depend on the thread count.
#include <algorithm>
#include <vector>

#include "kernels/cpu/lightning_common.h"
#include "kernels/cpu/memory_gates.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sum_over_batch.h"
#include "kernels/linear_memory.h"

namespace eat::cpu {

using lightning_detail::head_rows;
using memory_gates::ChunkGates;
using memory_gates::GateGrads;
using memory_gates::Mat;
using memory_gates::Vec;

namespace {

template <typename T>
using StateMap = Eigen::Map<Mat<T>>;
template <typename T>
using ConstStateMap = Eigen::Map<const Mat<T>>;

// Everything a chunk computation reads.
template <typename T>
struct Problem {
  const HeadShape& s;
  const LinearMemoryArgs& a;
  const T *q, *k, *v, *theta_logit, *eta_logit, *alpha_logit;
  int64_t chunks() const { return memory_chunks(s.T, a.chunk); }
  int64_t checkpoints() const { return memory_checkpoints(s.T, a.chunk, a.checkpoint_every); }
  int64_t state_size() const { return s.d * s.e; }
  // Chunk j of flat (batch, head) index bh.
  int64_t t0(int64_t j) const { return j * a.chunk; }
  int64_t rows(int64_t j) const { return std::min(a.chunk, s.T - t0(j)); }
  // Offset of token t of head bh in a [B, T, H] logit tensor.
  int64_t logit_at(int64_t bh, int64_t t) const { return ((bh / s.H) * s.T + t) * s.H + bh % s.H; }
  void gates(int64_t bh, int64_t j, ChunkGates<T>& g) const {
    const int64_t o = logit_at(bh, t0(j));
    g.build(rows(j), theta_logit + o, eta_logit + o, alpha_logit + o, s.H, a.max_lr);
  }
};

// The state of head bh in a [B, H, d, e] tensor, or [H, d, e] when shared; zero when null.
template <typename T>
Mat<T> initial_state(const T* p, bool shared, const HeadShape& s, int64_t bh) {
  if (!p) return Mat<T>::Zero(s.d, s.e);
  return ConstStateMap<T>(p + (shared ? bh % s.H : bh) * s.d * s.e, s.d, s.e);
}

// One chunk forward from (W, S) at its start: the end state into (Wn, Sn) and, when o is not null,
// the outputs into o's rows.
template <typename T>
void chunk_forward(const Problem<T>& P, int64_t bh, int64_t j, const ChunkGates<T>& gt, const Mat<T>& W,
                   const Mat<T>& S, Mat<T>& Wn, Mat<T>& Sn, T* o) {
  const auto& s = P.s;
  const int64_t b = bh / s.H, h = bh % s.H, t0 = P.t0(j), L = gt.L;
  auto Q = head_rows(P.q, s, b, h, t0, L, s.d);
  auto K = head_rows(P.k, s, b, h, t0, L, s.d);
  Mat<T> E = K * W;
  E -= head_rows(P.v, s, b, h, t0, L, s.e);
  if (o) {
    Mat<T> A = Mat<T>::Zero(L, L);
    A.template triangularView<Eigen::Lower>() = Q * K.transpose();
    A = A.cwiseProduct(gt.G);
    auto O = head_rows(o, s, b, h, t0, L, s.e);
    O.noalias() = gt.beta.asDiagonal() * (Q * W);
    O.noalias() += gt.f.asDiagonal() * (Q * S);
    O.noalias() -= 2 * A * E;
  }
  Wn = gt.beta(L - 1) * W + gt.f(L - 1) * S;
  Wn.noalias() -= 2 * K.transpose() * (gt.g.asDiagonal() * E);
  Sn = gt.m(L - 1) * S;
  Sn.noalias() -= 2 * K.transpose() * (gt.n.asDiagonal() * E);
}

// Where one chunk's backward writes its input gradients (null: not wanted).
template <typename T>
struct InputGrads {
  T *dq, *dk, *dv, *dtheta, *deta, *dalpha;
};

// One chunk backward from its start state (W, S) and the gradients of its outputs (dy's rows) and
// of its end state (dW, dS, replaced by the gradients of its start state).
template <typename T>
void chunk_backward(const Problem<T>& P, int64_t bh, int64_t j, const ChunkGates<T>& gt, GateGrads<T>& gr,
                    const Mat<T>& W, const Mat<T>& S, const T* dy, Mat<T>& dW, Mat<T>& dS, const InputGrads<T>& out) {
  const auto& s = P.s;
  const int64_t b = bh / s.H, h = bh % s.H, t0 = P.t0(j), L = gt.L;
  auto Q = head_rows(P.q, s, b, h, t0, L, s.d);
  auto K = head_rows(P.k, s, b, h, t0, L, s.d);
  auto dO = head_rows(dy, s, b, h, t0, L, s.e);
  const Vec<T>& g = gt.g;
  const Vec<T>& n = gt.n;
  Mat<T> E = K * W;
  E -= head_rows(P.v, s, b, h, t0, L, s.e);
  Mat<T> A = Mat<T>::Zero(L, L);
  A.template triangularView<Eigen::Lower>() = Q * K.transpose();
  Mat<T> dOE = Mat<T>::Zero(L, L);
  dOE.template triangularView<Eigen::Lower>() = dO * E.transpose();
  const Mat<T> Ahat = gt.G.cwiseProduct(A), Bm = gt.G.cwiseProduct(dOE);
  const Mat<T> KdW = K * dW, KdS = K * dS, QW = Q * W, QS = Q * S;

  Mat<T> dE = -2 * (Ahat.transpose() * dO);
  dE.noalias() -= 2 * (g.asDiagonal() * KdW);
  dE.noalias() -= 2 * (n.asDiagonal() * KdS);

  // Gates.
  gr.dG = -2 * A.cwiseProduct(dOE);
  gr.dG.row(L - 1) -= 2 * KdW.cwiseProduct(E).rowwise().sum().transpose();
  gr.dn = -2 * KdS.cwiseProduct(E).rowwise().sum();
  gr.dbeta = QW.cwiseProduct(dO).rowwise().sum();
  gr.dbeta(L - 1) += dW.cwiseProduct(W).sum();
  gr.df = QS.cwiseProduct(dO).rowwise().sum();
  gr.df(L - 1) += dW.cwiseProduct(S).sum();
  gr.dm_last = dS.cwiseProduct(S).sum();
  const int64_t lo = P.logit_at(bh, t0);
  auto at = [lo](T* p) { return p ? p + lo : nullptr; };
  memory_gates::gate_logit_grads(gt, gr, P.theta_logit + lo, P.eta_logit + lo, P.alpha_logit + lo, s.H,
                                 at(out.dtheta), at(out.deta), at(out.dalpha));

  if (out.dq) {
    auto dQ = head_rows(out.dq, s, b, h, t0, L, s.d);
    dQ.noalias() = gt.beta.asDiagonal() * (dO * W.transpose());
    dQ.noalias() += gt.f.asDiagonal() * (dO * S.transpose());
    dQ.noalias() -= 2 * Bm * K;
  }
  if (out.dk) {
    auto dK = head_rows(out.dk, s, b, h, t0, L, s.d);
    dK.noalias() = dE * W.transpose();
    dK.noalias() -= 2 * Bm.transpose() * Q;
    dK.noalias() -= 2 * (g.asDiagonal() * (E * dW.transpose()));
    dK.noalias() -= 2 * (n.asDiagonal() * (E * dS.transpose()));
  }
  if (out.dv) head_rows(out.dv, s, b, h, t0, L, s.e) = -dE;

  // The start state's gradients (the end state's are read above, so they are replaced last).
  Mat<T> dW0 = gt.beta(L - 1) * dW;
  dW0.noalias() += Q.transpose() * (gt.beta.asDiagonal() * dO);
  dW0.noalias() += K.transpose() * dE;
  Mat<T> dS0 = gt.f(L - 1) * dW + gt.m(L - 1) * dS;
  dS0.noalias() += Q.transpose() * (gt.f.asDiagonal() * dO);
  dW = std::move(dW0);
  dS = std::move(dS0);
}

}  // namespace

template <typename T>
void linear_memory_forward(const HeadShape& s, const LinearMemoryArgs& a, const T* q, const T* k, const T* v,
                           const T* theta_logit, const T* eta_logit, const T* alpha_logit, const T* w0, const T* s0,
                           T* y, T* w_final, T* s_final, T* checkpoints) {
  const Problem<T> P{s, a, q, k, v, theta_logit, eta_logit, alpha_logit};
  const int64_t heads = s.B * s.H, chunks = P.chunks(), ss = P.state_size();
#pragma omp parallel for schedule(static) if (parallel_worth(s.T * s.H * s.B * ss) && heads > 1)
  for (int64_t bh = 0; bh < heads; ++bh) {
    Mat<T> W = initial_state(w0, a.w0_shared, s, bh), S = initial_state(s0, a.s0_shared, s, bh), Wn, Sn;
    ChunkGates<T> gt;
    T* kept = checkpoints + bh * P.checkpoints() * 2 * ss;
    StateMap<T>(kept, s.d, s.e) = W;
    StateMap<T>(kept + ss, s.d, s.e) = S;
    for (int64_t j = 0; j < chunks; ++j) {
      if (j > 0 && j % a.checkpoint_every == 0) {
        T* c = kept + (j / a.checkpoint_every) * 2 * ss;
        StateMap<T>(c, s.d, s.e) = W;
        StateMap<T>(c + ss, s.d, s.e) = S;
      }
      P.gates(bh, j, gt);
      chunk_forward(P, bh, j, gt, W, S, Wn, Sn, y);
      std::swap(W, Wn);
      std::swap(S, Sn);
    }
    StateMap<T>(w_final + bh * ss, s.d, s.e) = W;
    StateMap<T>(s_final + bh * ss, s.d, s.e) = S;
  }
}

template <typename T>
void linear_memory_backward(const HeadShape& s, const LinearMemoryArgs& a, const T* q, const T* k, const T* v,
                            const T* theta_logit, const T* eta_logit, const T* alpha_logit, const T* checkpoints,
                            const T* dy, const T* dw_final, const T* ds_final, T* dq, T* dk, T* dv, T* dtheta_logit,
                            T* deta_logit, T* dalpha_logit, T* dw0, T* ds0) {
  const Problem<T> P{s, a, q, k, v, theta_logit, eta_logit, alpha_logit};
  const int64_t heads = s.B * s.H, chunks = P.chunks(), ss = P.state_size(), every = a.checkpoint_every;
  const InputGrads<T> out{dq, dk, dv, dtheta_logit, deta_logit, dalpha_logit};
  // Shared initial states get per-sequence gradients first, summed over the batch below.
  std::vector<T> dw_seq(dw0 && a.w0_shared ? heads * ss : 0), ds_seq(ds0 && a.s0_shared ? heads * ss : 0);
  T* dw_out = dw0 && a.w0_shared ? dw_seq.data() : dw0;
  T* ds_out = ds0 && a.s0_shared ? ds_seq.data() : ds0;
#pragma omp parallel for schedule(static) if (parallel_worth(s.T * s.H * s.B * ss) && heads > 1)
  for (int64_t bh = 0; bh < heads; ++bh) {
    Mat<T> dW = ConstStateMap<T>(dw_final + bh * ss, s.d, s.e), dS = ConstStateMap<T>(ds_final + bh * ss, s.d, s.e);
    const T* kept = checkpoints + bh * P.checkpoints() * 2 * ss;
    std::vector<Mat<T>> Ws(static_cast<size_t>(std::min(every, std::max<int64_t>(chunks, 1)))), Ss(Ws.size());
    ChunkGates<T> gt;
    GateGrads<T> gr;
    for (int64_t c = P.checkpoints() - 1; c >= 0 && chunks > 0; --c) {
      // The start states of chunks j0 .. j1 - 1 from the kept one at j0.
      const int64_t j0 = c * every, j1 = std::min(chunks, j0 + every);
      Ws[0] = ConstStateMap<T>(kept + c * 2 * ss, s.d, s.e);
      Ss[0] = ConstStateMap<T>(kept + c * 2 * ss + ss, s.d, s.e);
      for (int64_t j = j0; j + 1 < j1; ++j) {
        P.gates(bh, j, gt);
        chunk_forward<T>(P, bh, j, gt, Ws[j - j0], Ss[j - j0], Ws[j - j0 + 1], Ss[j - j0 + 1], nullptr);
      }
      for (int64_t j = j1 - 1; j >= j0; --j) {
        P.gates(bh, j, gt);
        chunk_backward(P, bh, j, gt, gr, Ws[j - j0], Ss[j - j0], dy, dW, dS, out);
      }
    }
    if (dw_out) StateMap<T>(dw_out + bh * ss, s.d, s.e) = dW;
    if (ds_out) StateMap<T>(ds_out + bh * ss, s.d, s.e) = dS;
  }
  if (dw0 && a.w0_shared) sum_over_batch(dw_seq.data(), s.B, s.H * ss, dw0);
  if (ds0 && a.s0_shared) sum_over_batch(ds_seq.data(), s.B, s.H * ss, ds0);
}

EAT_LINEAR_MEMORY_INSTANTIATE(float)
EAT_LINEAR_MEMORY_INSTANTIATE(double)

}  // namespace eat::cpu
