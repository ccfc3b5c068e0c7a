// Titans' MLP memory on the CPU (kernels/mlp_memory.h): one OpenMP task per (batch, head), static
// schedule, walking that head's chunks in time order with its state in four local matrices; Eigen
// for every per-chunk product. The parallel region is always entered (not only above some size):
// Eigen then runs every product single-threaded with one blocking whatever the thread count, so
// results are bit-identical at any OMP_NUM_THREADS.
// Backward (titans.md 3.2, 3.3): for each stretch of chunks between two kept states, from the last
// stretch to the first, recompute the states entering its chunks, then run its chunks' backward in
// reverse order, carrying the gradient of the state at the chunk's end. The recomputation runs the
// forward's own chunk step, so the gradients do not depend on how many states were kept.
#include "kernels/mlp_memory.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/memory_gates.h"
#include "kernels/cpu/sum_over_batch.h"

namespace eat::cpu {

using memory_gates::ChunkGates;
using memory_gates::GateGrads;
using memory_gates::lower;
using memory_gates::Mat;
using memory_gates::sigmoid;
using memory_gates::Vec;

namespace {

// silu(z) = z s with s = sigmoid(z); silu' = s (1 + z (1 - s)); silu'' = s (1 - s) (2 + z (1 - 2 s)).
template <typename T>
struct Silu {
  static T value(T z) { return z * sigmoid(z); }
  static T first(T z) {
    const T s = sigmoid(z);
    return s * (T(1) + z * (T(1) - s));
  }
  static T second(T z) {
    const T s = sigmoid(z);
    return s * (T(1) - s) * (T(2) + z * (T(1) - T(2) * s));
  }
};
template <typename T>
Mat<T> silu_of(const Mat<T>& z) {
  return z.unaryExpr([](T x) { return Silu<T>::value(x); });
}
template <typename T>
Mat<T> silu_first(const Mat<T>& z) {
  return z.unaryExpr([](T x) { return Silu<T>::first(x); });
}

// One head's memory state.
template <typename T>
struct HeadState {
  Mat<T> w1, w2, s1, s2;  // [d, h], [h, e], [d, h], [h, e]

  void load(const MlpMemoryShape& s, const T* at) {
    w1 = Eigen::Map<const Mat<T>>(at, s.d, s.hidden);
    w2 = Eigen::Map<const Mat<T>>(at + s.w1_size(), s.hidden, s.e);
    s1 = Eigen::Map<const Mat<T>>(at + s.w1_size() + s.w2_size(), s.d, s.hidden);
    s2 = Eigen::Map<const Mat<T>>(at + 2 * s.w1_size() + s.w2_size(), s.hidden, s.e);
  }
  void store(const MlpMemoryShape& s, T* at) const {
    Eigen::Map<Mat<T>>(at, s.d, s.hidden) = w1;
    Eigen::Map<Mat<T>>(at + s.w1_size(), s.hidden, s.e) = w2;
    Eigen::Map<Mat<T>>(at + s.w1_size() + s.w2_size(), s.d, s.hidden) = s1;
    Eigen::Map<Mat<T>>(at + 2 * s.w1_size() + s.w2_size(), s.hidden, s.e) = s2;
  }
};

// Head (b, h)'s view of the inputs.
template <typename T>
struct HeadInputs {
  const MlpMemoryShape& s;
  const MlpMemoryArgs& a;
  int64_t b, h;
  const T *q, *k, *v, *theta, *eta, *alpha;

  int64_t chunk_start(int64_t j) const { return j * a.chunk; }
  int64_t chunk_length(int64_t j) const { return std::min(a.chunk, s.T - j * a.chunk); }
  // Rows [t0, t0 + L) of this head in a [B, T, H, width] tensor.
  template <typename U>
  Eigen::Map<Mat<U>, 0, Eigen::OuterStride<>> rows(U* base, int64_t t0, int64_t L, int64_t width) const {
    return {base + ((b * s.T + t0) * s.H + h) * width, L, width, Eigen::OuterStride<>(s.H * width)};
  }
  template <typename U>
  Eigen::Map<const Mat<U>, 0, Eigen::OuterStride<>> rows(const U* base, int64_t t0, int64_t L, int64_t width) const {
    return {base + ((b * s.T + t0) * s.H + h) * width, L, width, Eigen::OuterStride<>(s.H * width)};
  }
  // Offset of token t0's gate logit of this head in a [B, T, H] tensor.
  int64_t gate_offset(int64_t t0) const { return (b * s.T + t0) * s.H + h; }
  ChunkGates<T> gates(int64_t t0, int64_t L) const {
    const int64_t o = gate_offset(t0);
    ChunkGates<T> g;
    g.build(L, theta + o, eta + o, alpha + o, s.H, a.max_lr);
    return g;
  }
};

// Everything of one chunk the next state reads (Z, A, E, R, D) and, with `outputs`, what the
// output and the backward read too (the scores, Hq, Aq and their products).
template <typename T>
struct ChunkTerms {
  ChunkGates<T> c;
  Mat<T> Q, K, V, Z, A, E, R, D, QK, QW1, QS1, Hq, Aq, AqA, AqW2, AqS2;

  ChunkTerms(const HeadInputs<T>& in, const HeadState<T>& st, int64_t j, bool outputs = true)
      : c(in.gates(in.chunk_start(j), in.chunk_length(j))) {
    const int64_t t0 = in.chunk_start(j), L = c.L;
    K = in.rows(in.k, t0, L, in.s.d);
    V = in.rows(in.v, t0, L, in.s.e);
    Z.noalias() = K * st.w1;
    A = silu_of(Z);
    E.noalias() = A * st.w2;
    E = T(2) * (E - V);
    R.noalias() = E * st.w2.transpose();
    D = R.cwiseProduct(silu_first(Z));
    if (!outputs) return;
    Q = in.rows(in.q, t0, L, in.s.d);
    QK.noalias() = Q * K.transpose();
    QW1.noalias() = Q * st.w1;
    QS1.noalias() = Q * st.s1;
    const Mat<T> GQK = c.G.cwiseProduct(QK);  // G is lower triangular: the causal mask
    Hq = c.beta.asDiagonal() * QW1;
    Hq.noalias() += c.f.asDiagonal() * QS1;
    Hq.noalias() -= GQK * D;
    Aq = silu_of(Hq);
    AqA.noalias() = Aq * A.transpose();
    AqW2.noalias() = Aq * st.w2;
    AqS2.noalias() = Aq * st.s2;
  }

  Mat<T> output() const {
    Mat<T> O = c.beta.asDiagonal() * AqW2;
    O.noalias() += c.f.asDiagonal() * AqS2;
    O.noalias() -= c.G.cwiseProduct(AqA) * E;
    return O;
  }

  HeadState<T> next_state(const HeadState<T>& st) const {
    const int64_t last = c.L - 1;
    const T beta_b = c.beta[last], f_b = c.f[last], m_b = c.m[last];
    const Mat<T> gD = c.g.asDiagonal() * D, nD = c.n.asDiagonal() * D;
    const Mat<T> gE = c.g.asDiagonal() * E, nE = c.n.asDiagonal() * E;
    HeadState<T> out;
    out.w1 = beta_b * st.w1 + f_b * st.s1;
    out.w1.noalias() -= K.transpose() * gD;
    out.s1 = m_b * st.s1;
    out.s1.noalias() -= K.transpose() * nD;
    out.w2 = beta_b * st.w2 + f_b * st.s2;
    out.w2.noalias() -= A.transpose() * gE;
    out.s2 = m_b * st.s2;
    out.s2.noalias() -= A.transpose() * nE;
    return out;
  }
};

// Row-wise dot products of two matrices of one shape.
template <typename T>
Vec<T> rowdot(const Mat<T>& a, const Mat<T>& b) {
  return a.cwiseProduct(b).rowwise().sum();
}

// One chunk's backward: writes the gradients of its tokens' inputs and turns `ds`, the gradient of
// the state at the chunk's end, into that of the state entering it (titans.md 3.2).
template <typename T>
void chunk_backward(const HeadInputs<T>& in, const HeadState<T>& st, int64_t j, const T* dy, HeadState<T>& ds,
                    T* dq, T* dk, T* dv, T* dtheta, T* deta, T* dalpha) {
  const ChunkTerms<T> t(in, st, j);
  const ChunkGates<T>& c = t.c;
  const int64_t t0 = in.chunk_start(j), L = c.L, last = L - 1;
  const Mat<T> dO = in.rows(dy, t0, L, in.s.e);
  const Vec<T> ones = Vec<T>::Ones(L);
  HeadState<T> d0;  // the gradient of the state entering the chunk

  // Y = beta o Aq W2 + f o Aq S2 - (G o Aq A^T) E.
  const Mat<T> dOE = dO * t.E.transpose();
  const Mat<T> Bo = c.G.cwiseProduct(dOE);
  Mat<T> dG = -lower<T>(t.AqA.cwiseProduct(dOE));
  Vec<T> dbeta = rowdot(t.AqW2, dO), df = rowdot(t.AqS2, dO);
  const Mat<T> beta_dO = c.beta.asDiagonal() * dO, f_dO = c.f.asDiagonal() * dO;
  Mat<T> dAq = beta_dO * st.w2.transpose();
  dAq.noalias() += f_dO * st.s2.transpose();
  dAq.noalias() -= Bo * t.A;
  d0.w2.noalias() = t.Aq.transpose() * beta_dO;
  d0.s2.noalias() = t.Aq.transpose() * f_dO;
  Mat<T> dA = -(Bo.transpose() * t.Aq);
  Mat<T> dE = -(c.G.cwiseProduct(t.AqA).transpose() * dO);

  // Hq = beta o Q W1 + f o Q S1 - (G o Q K^T) D, Aq = silu(Hq).
  const Mat<T> dHq = dAq.cwiseProduct(silu_first(t.Hq));
  dbeta += rowdot(t.QW1, dHq);
  df += rowdot(t.QS1, dHq);
  const Mat<T> dHD = dHq * t.D.transpose();
  dG -= lower<T>(t.QK.cwiseProduct(dHD));
  const Mat<T> Bh = c.G.cwiseProduct(dHD);
  const Mat<T> beta_dHq = c.beta.asDiagonal() * dHq, f_dHq = c.f.asDiagonal() * dHq;
  Mat<T> dQ = beta_dHq * st.w1.transpose();
  dQ.noalias() += f_dHq * st.s1.transpose();
  dQ.noalias() -= Bh * t.K;
  Mat<T> dK = -(Bh.transpose() * t.Q);
  Mat<T> dD = -(c.G.cwiseProduct(t.QK).transpose() * dHq);
  d0.w1.noalias() = t.Q.transpose() * beta_dHq;
  d0.s1.noalias() = t.Q.transpose() * f_dHq;

  // The chunk-end state: W1' = beta_b W1 + f_b S1 - K^T (g o D), S1' = m_b S1 - K^T (n o D), and
  // W2', S2' alike with A and E.
  const Mat<T> KdW1 = t.K * ds.w1, KdS1 = t.K * ds.s1, AdW2 = t.A * ds.w2, AdS2 = t.A * ds.s2;
  const Vec<T> dg = -(rowdot(KdW1, t.D) + rowdot(AdW2, t.E));
  const Vec<T> dn = -(rowdot(KdS1, t.D) + rowdot(AdS2, t.E));
  dD.noalias() -= c.g.asDiagonal() * KdW1;
  dD.noalias() -= c.n.asDiagonal() * KdS1;
  dE.noalias() -= c.g.asDiagonal() * AdW2;
  dE.noalias() -= c.n.asDiagonal() * AdS2;
  const Mat<T> gD = c.g.asDiagonal() * t.D, nD = c.n.asDiagonal() * t.D;
  const Mat<T> gE = c.g.asDiagonal() * t.E, nE = c.n.asDiagonal() * t.E;
  dK.noalias() -= gD * ds.w1.transpose();
  dK.noalias() -= nD * ds.s1.transpose();
  dA.noalias() -= gE * ds.w2.transpose();
  dA.noalias() -= nE * ds.s2.transpose();
  const T beta_b = c.beta[last], f_b = c.f[last], m_b = c.m[last];
  d0.w1 += beta_b * ds.w1;
  d0.s1 += f_b * ds.w1 + m_b * ds.s1;
  d0.w2 += beta_b * ds.w2;
  d0.s2 += f_b * ds.w2 + m_b * ds.s2;
  dbeta[last] += ds.w1.cwiseProduct(st.w1).sum() + ds.w2.cwiseProduct(st.w2).sum();
  df[last] += ds.w1.cwiseProduct(st.s1).sum() + ds.w2.cwiseProduct(st.s2).sum();
  const T dm_last = ds.s1.cwiseProduct(st.s1).sum() + ds.s2.cwiseProduct(st.s2).sum();
  dG.row(last) += dg.transpose();

  // D = (E W2^T) o silu'(Z): silu'' enters here.
  const Mat<T> dR = dD.cwiseProduct(silu_first(t.Z));
  Mat<T> dZ = dD.cwiseProduct(t.R).cwiseProduct(t.Z.unaryExpr([](T x) { return Silu<T>::second(x); }));
  dE.noalias() += dR * st.w2;
  d0.w2.noalias() += dR.transpose() * t.E;
  // E = 2 (A W2 - V), A = silu(Z), Z = K W1.
  dA.noalias() += T(2) * dE * st.w2.transpose();
  d0.w2.noalias() += T(2) * t.A.transpose() * dE;
  dZ += dA.cwiseProduct(silu_first(t.Z));
  dK.noalias() += dZ * st.w1.transpose();
  d0.w1.noalias() += t.K.transpose() * dZ;

  if (dq) in.rows(dq, t0, L, in.s.d) = dQ;
  if (dk) in.rows(dk, t0, L, in.s.d) = dK;
  if (dv) in.rows(dv, t0, L, in.s.e) = T(-2) * dE;
  const int64_t o = in.gate_offset(t0);
  const GateGrads<T> gr{std::move(dG), dn, std::move(dbeta), std::move(df), dm_last};
  memory_gates::gate_logit_grads(c, gr, in.theta + o, in.eta + o, in.alpha + o, in.s.H, dtheta ? dtheta + o : nullptr,
                                 deta ? deta + o : nullptr, dalpha ? dalpha + o : nullptr);
  ds = std::move(d0);
}

// The initial state of head bh: W1 and W2 (per sequence, or shared by the batch), S1 and S2 (zero when null).
template <typename T>
HeadState<T> initial_state(const MlpMemoryShape& s, int64_t bh, const T* w1, const T* w2, const T* s1,
                           const T* s2) {
  const int64_t wh = s.shared_weights ? bh % s.H : bh;
  HeadState<T> st;
  st.w1 = Eigen::Map<const Mat<T>>(w1 + wh * s.w1_size(), s.d, s.hidden);
  st.w2 = Eigen::Map<const Mat<T>>(w2 + wh * s.w2_size(), s.hidden, s.e);
  st.s1 = s1 ? Mat<T>(Eigen::Map<const Mat<T>>(s1 + bh * s.w1_size(), s.d, s.hidden)) : Mat<T>::Zero(s.d, s.hidden);
  st.s2 = s2 ? Mat<T>(Eigen::Map<const Mat<T>>(s2 + bh * s.w2_size(), s.hidden, s.e)) : Mat<T>::Zero(s.hidden, s.e);
  return st;
}

}  // namespace

template <typename T>
void mlp_memory_forward(const MlpMemoryShape& s, const MlpMemoryArgs& a, const T* q, const T* k, const T* v,
                        const T* theta_logit, const T* eta_logit, const T* alpha_logit, const T* w1, const T* w2,
                        const T* s1, const T* s2, T* y, T* w1_out, T* w2_out, T* s1_out, T* s2_out, T* checkpoints) {
  const int64_t chunks = memory_chunks(s.T, a.chunk), stride = a.checkpoint_every;
  const int64_t kept = memory_checkpoints(s.T, a.chunk, stride), heads = s.B * s.H;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < heads; ++bh) {
    const HeadInputs<T> in{s, a, bh / s.H, bh % s.H, q, k, v, theta_logit, eta_logit, alpha_logit};
    HeadState<T> st = initial_state(s, bh, w1, w2, s1, s2);
    T* kept_states = checkpoints + bh * kept * s.state_size();
    st.store(s, kept_states);  // chunk 0's (also when T = 0)
    for (int64_t j = 0; j < chunks; ++j) {
      if (j > 0 && j % stride == 0) st.store(s, kept_states + (j / stride) * s.state_size());
      const ChunkTerms<T> t(in, st, j);
      in.rows(y, in.chunk_start(j), t.c.L, s.e) = t.output();
      st = t.next_state(st);
    }
    Eigen::Map<Mat<T>>(w1_out + bh * s.w1_size(), s.d, s.hidden) = st.w1;
    Eigen::Map<Mat<T>>(w2_out + bh * s.w2_size(), s.hidden, s.e) = st.w2;
    Eigen::Map<Mat<T>>(s1_out + bh * s.w1_size(), s.d, s.hidden) = st.s1;
    Eigen::Map<Mat<T>>(s2_out + bh * s.w2_size(), s.hidden, s.e) = st.s2;
  }
}

template <typename T>
void mlp_memory_backward(const MlpMemoryShape& s, const MlpMemoryArgs& a, const T* q, const T* k, const T* v,
                         const T* theta_logit, const T* eta_logit, const T* alpha_logit, const T* checkpoints,
                         const T* dy, const T* dw1_out, const T* dw2_out, const T* ds1_out, const T* ds2_out, T* dq,
                         T* dk, T* dv, T* dtheta_logit, T* deta_logit, T* dalpha_logit, T* dw1, T* dw2, T* ds1,
                         T* ds2) {
  const int64_t chunks = memory_chunks(s.T, a.chunk), stride = a.checkpoint_every;
  const int64_t kept = memory_checkpoints(s.T, a.chunk, stride), heads = s.B * s.H;
  // With shared weights every head's initial-weight gradient goes to a scratch first, then is
  // summed over the batch in batch order.
  std::vector<T> dw1_seq(dw1 && s.shared_weights ? heads * s.w1_size() : 0);
  std::vector<T> dw2_seq(dw2 && s.shared_weights ? heads * s.w2_size() : 0);
  T* dw1_to = dw1 && s.shared_weights ? dw1_seq.data() : dw1;
  T* dw2_to = dw2 && s.shared_weights ? dw2_seq.data() : dw2;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < heads; ++bh) {
    const HeadInputs<T> in{s, a, bh / s.H, bh % s.H, q, k, v, theta_logit, eta_logit, alpha_logit};
    HeadState<T> ds;
    ds.w1 = Eigen::Map<const Mat<T>>(dw1_out + bh * s.w1_size(), s.d, s.hidden);
    ds.w2 = Eigen::Map<const Mat<T>>(dw2_out + bh * s.w2_size(), s.hidden, s.e);
    ds.s1 = Eigen::Map<const Mat<T>>(ds1_out + bh * s.w1_size(), s.d, s.hidden);
    ds.s2 = Eigen::Map<const Mat<T>>(ds2_out + bh * s.w2_size(), s.hidden, s.e);
    const T* kept_states = checkpoints + bh * kept * s.state_size();
    std::vector<HeadState<T>> entering(static_cast<size_t>(std::min(stride, std::max<int64_t>(chunks, 1))));
    for (int64_t c = (chunks + stride - 1) / stride - 1; c >= 0; --c) {
      const int64_t j0 = c * stride, j1 = std::min(chunks, j0 + stride);
      entering[0].load(s, kept_states + c * s.state_size());
      for (int64_t j = j0 + 1; j < j1; ++j)
        entering[j - j0] = ChunkTerms<T>(in, entering[j - j0 - 1], j - 1, false).next_state(entering[j - j0 - 1]);
      for (int64_t j = j1 - 1; j >= j0; --j)
        chunk_backward(in, entering[j - j0], j, dy, ds, dq, dk, dv, dtheta_logit, deta_logit, dalpha_logit);
    }
    if (dw1_to) Eigen::Map<Mat<T>>(dw1_to + bh * s.w1_size(), s.d, s.hidden) = ds.w1;
    if (dw2_to) Eigen::Map<Mat<T>>(dw2_to + bh * s.w2_size(), s.hidden, s.e) = ds.w2;
    if (ds1) Eigen::Map<Mat<T>>(ds1 + bh * s.w1_size(), s.d, s.hidden) = ds.s1;
    if (ds2) Eigen::Map<Mat<T>>(ds2 + bh * s.w2_size(), s.hidden, s.e) = ds.s2;
  }
  if (dw1 && s.shared_weights) sum_over_batch(dw1_seq.data(), s.B, s.H * s.w1_size(), dw1);
  if (dw2 && s.shared_weights) sum_over_batch(dw2_seq.data(), s.B, s.H * s.w2_size(), dw2);
}

EAT_MLP_MEMORY_INSTANTIATE(float)
EAT_MLP_MEMORY_INSTANTIATE(double)

}  // namespace eat::cpu
