// Taylor linear attention, the chunked form on the CPU. With S(j) the state [S | z] entering
// block j (S(0) = S0), P the feature map and v' = [v | 1]:
//     [N | Z]_j = P(Q_j) S(j) + A(Q_j, K_j) V'_j          (A causal within the block)
//     S(j + 1)  = S(j) + P(K_j)^T V'_j                    (the last one is the final state)
// and backwards, with G_j = d[N | Z]_j and R(j) the gradient of the state at block j's end
// (R(last) = dfinal, R(j - 1) = R(j) + P(Q_j)^T G_j, dS0 = R(-1)):
//     dQ_j  = intra + P'(Q_j)^T (G_j S(j)^T)
//     dK_j  = intra + P'(K_j)^T (V'_j R(j)^T),   dV'_j = intra + P(K_j) R(j)
// where intra is the quadratic block's backward (taylor_common.h, tile_backward).
// Schedules (kernels/cpu/chunk_schedule.h): per_head walks each head's blocks in order (the dQ
// terms need the states forwards, the dK and dV terms the state gradients backwards: two sweeps);
// per_block first builds every block's state (and state gradient) by a short scan per head over
// the blocks' own contributions, then runs every block as its own task. Both add the same terms
// in the same order, a state and a block's contribution always as a separate sum, so their results
// are bit-identical. Work O(T C (f + e) + T D' e) per head.
#include "kernels/cpu/taylor_chunked.h"

#include "kernels/cpu/taylor_common.h"

namespace eat::cpu {

using namespace taylor_detail;

namespace {

// Everything a block computation reads.
template <typename T>
struct Problem {
  Head P;
  ChunkGrid grid;
  const T *q, *k, *v;
  Problem(const HeadShape& s, const TaylorKernelArgs& a, const T* q_, const T* k_, const T* v_)
      : P(s, a), grid(s.B, s.T, s.H, a.block), q(q_), k(k_), v(v_) {}
  Mat<T> queries(const BlockAt& a) const { return rows_of(q, P.s, a.b, a.h, a.t0, a.L, P.s.d); }
  Mat<T> keys(const BlockAt& a) const { return rows_of(k, P.s, a.b, a.h, a.t0, a.L, P.s.d); }
  Mat<T> values(const BlockAt& a) const { return values_with_ones(v, P.s, a.b, a.h, a.t0, a.L); }
  int64_t block_work() const { return grid.size * (grid.size + P.D) * (P.s.d + P.E); }
};

// The gradient of the block's outputs [N | Z] (from dy, and y and the denominators when normalising).
template <typename T>
struct OutputGrads {
  const T *y, *dy;
  const RowStat* denominator;
  Mat<T> of(const Problem<T>& pr, const BlockAt& a) const {
    return output_grad(pr.P, y, denominator, dy, a.b, a.h, a.t0, a.L);
  }
};

// P(K_j)^T V'_j: the block's contribution to the state at its end.
template <typename T>
Mat<T> state_delta(const Problem<T>& pr, const BlockAt& a) {
  return features(pr.keys(a)).transpose() * pr.values(a);
}

// P(Q_j)^T G_j: the block's contribution to the gradient of the state entering it.
template <typename T>
Mat<T> state_grad_delta(const Problem<T>& pr, const BlockAt& a, const OutputGrads<T>& og) {
  return features(pr.queries(a)).transpose() * og.of(pr, a);
}

template <typename T>
void block_forward(const Problem<T>& pr, const BlockAt& a, const Mat<T>& S, T* y, RowStat* denominator) {
  const Mat<T> qb = pr.queries(a);
  Mat<T> out = features(qb) * S;
  out.noalias() += scores(qb, a.t0, pr.keys(a), a.t0) * pr.values(a);
  write_outputs(pr.P, out, a.b, a.h, a.t0, y, denominator);
}

// Gradients of one block's rows: the quadratic part, which every schedule computes first.
template <typename T>
struct BlockGrads {
  Mat<T> dq, dk, dv;
};
template <typename T>
BlockGrads<T> block_intra_grads(const Problem<T>& pr, const BlockAt& a, const Mat<T>& G, bool want_q, bool want_k,
                                bool want_v) {
  const HeadShape& s = pr.P.s;
  BlockGrads<T> g{Mat<T>::Zero(a.L, s.d), Mat<T>::Zero(a.L, s.d), Mat<T>::Zero(a.L, pr.P.E)};
  tile_backward<T>(pr.queries(a), a.t0, pr.keys(a), a.t0, pr.values(a), G, want_q ? &g.dq : nullptr,
                   want_k ? &g.dk : nullptr, want_v ? &g.dv : nullptr);
  return g;
}
// dQ_j's term from the state S(j) entering the block; written out.
template <typename T>
void finish_dq(const Problem<T>& pr, const BlockAt& a, const Mat<T>& G, const Mat<T>& S, Mat<T>& dqb, T* dq) {
  add_feature_grad<T>(pr.queries(a), G * S.transpose(), dqb);
  write_rows(dqb, dq, pr.P.s, a.b, a.h, a.t0, pr.P.s.d);
}
// dK_j's and dV'_j's terms from R(j), the gradient of the state at the block's end; written out.
template <typename T>
void finish_dkv(const Problem<T>& pr, const BlockAt& a, const Mat<T>& R, Mat<T>& dkb, const Mat<T>& dvb, T* dk, T* dv) {
  const Mat<T> kb = pr.keys(a);
  if (dk) {
    add_feature_grad<T>(kb, pr.values(a) * R.transpose(), dkb);
    write_rows(dkb, dk, pr.P.s, a.b, a.h, a.t0, pr.P.s.d);
  }
  if (dv) write_rows<T>(dvb + features(kb) * R, dv, pr.P.s, a.b, a.h, a.t0, pr.P.s.e);
}

// f(bh, j) for every block of every head, spread over threads (each writes only its own block).
template <typename T, typename F>
void for_each_block(const Problem<T>& pr, F&& f) {
  const int64_t tasks = pr.grid.heads() * pr.grid.count;
#pragma omp parallel for schedule(dynamic, 1) if (parallel_worth(tasks * pr.block_work()) && tasks > 1)
  for (int64_t i = 0; i < tasks; ++i) f(i / pr.grid.count, i % pr.grid.count);
}

// The states entering every block (entry j; entry count: the final state), from S0 (or zero):
// every block's contribution as its own task, then a scan per head.
template <typename T>
StateStack<T> entering_states(const Problem<T>& pr, const T* s0) {
  StateStack<T> st(pr.grid, pr.P.state_size());
  const int64_t D = pr.P.D, E = pr.P.E, count = pr.grid.count;
  for_each_block(pr, [&](int64_t bh, int64_t j) {
    Eigen::Map<Mat<T>>(st.at(bh, j + 1), D, E) = state_delta(pr, pr.grid.locate(bh, j));
  });
  for_each_head(pr.P.s, count * D * E, [&](int64_t b, int64_t h) {
    const int64_t bh = b * pr.P.s.H + h;
    Eigen::Map<Mat<T>>(st.at(bh, 0), D, E) = state_or_zero(s0, pr.P, bh);
    for (int64_t j = 0; j < count; ++j) {
      Eigen::Map<Mat<T>> next(st.at(bh, j + 1), D, E);
      next = Eigen::Map<const Mat<T>>(st.at(bh, j), D, E) + next;
    }
  });
  return st;
}

// The gradients of the states at every block's end: entry j + 1 is R(j), entry 0 dS0; from
// dfinal, every block's contribution as its own task, then a reverse scan per head.
template <typename T>
StateStack<T> state_gradients(const Problem<T>& pr, const OutputGrads<T>& og, const T* dfinal) {
  StateStack<T> rs(pr.grid, pr.P.state_size());
  const int64_t D = pr.P.D, E = pr.P.E, count = pr.grid.count;
  for_each_block(pr, [&](int64_t bh, int64_t j) {
    Eigen::Map<Mat<T>>(rs.at(bh, j), D, E) = state_grad_delta(pr, pr.grid.locate(bh, j), og);
  });
  for_each_head(pr.P.s, count * D * E, [&](int64_t b, int64_t h) {
    const int64_t bh = b * pr.P.s.H + h;
    Eigen::Map<Mat<T>>(rs.at(bh, count), D, E) = state_or_zero(dfinal, pr.P, bh);
    for (int64_t j = count - 1; j >= 0; --j) {
      Eigen::Map<Mat<T>> here(rs.at(bh, j), D, E);
      here = Eigen::Map<const Mat<T>>(rs.at(bh, j + 1), D, E) + here;
    }
  });
  return rs;
}

template <typename T>
Mat<T> state_at(const StateStack<T>& st, const Head& P, int64_t bh, int64_t j) {
  return Eigen::Map<const Mat<T>>(st.at(bh, j), P.D, P.E);
}

}  // namespace

template <typename T>
void taylor_chunked_forward_scheduled(const HeadShape& s, const TaylorKernelArgs& args, const T* q, const T* k,
                                      const T* v, const T* s0, T* y, T* final_state, RowStat* denominator,
                                      ChunkedSchedule schedule) {
  const Problem<T> pr(s, args, q, k, v);
  if (prefer_per_head(schedule, pr.grid.heads())) {
    for_each_head(s, pr.grid.count * pr.block_work(), [&](int64_t b, int64_t h) {
      const int64_t bh = b * s.H + h;
      Mat<T> S = state_or_zero(s0, pr.P, bh);
      for (int64_t j = 0; j < pr.grid.count; ++j) {
        const BlockAt a = pr.grid.locate(bh, j);
        block_forward(pr, a, S, y, denominator);
        S = S + state_delta(pr, a);
      }
      store_state(S, final_state, pr.P, bh);
    });
    return;
  }
  const StateStack<T> st = entering_states(pr, s0);
  for_each_block(pr, [&](int64_t bh, int64_t j) {
    block_forward(pr, pr.grid.locate(bh, j), state_at(st, pr.P, bh, j), y, denominator);
  });
  for (int64_t bh = 0; bh < pr.grid.heads(); ++bh) store_state(state_at(st, pr.P, bh, pr.grid.count), final_state, pr.P, bh);
}

template <typename T>
void taylor_chunked_backward_scheduled(const HeadShape& s, const TaylorKernelArgs& args, const T* q, const T* k,
                                       const T* v, const T* s0, const T* y, const RowStat* denominator, const T* dy,
                                       const T* dfinal, T* dq, T* dk, T* dv, T* ds0, ChunkedSchedule schedule) {
  const Problem<T> pr(s, args, q, k, v);
  const OutputGrads<T> og{y, dy, denominator};
  const bool want_q = dq != nullptr, want_k = dk != nullptr, want_v = dv != nullptr;
  if (prefer_per_head(schedule, pr.grid.heads())) {
    for_each_head(s, pr.grid.count * pr.block_work(), [&](int64_t b, int64_t h) {
      const int64_t bh = b * s.H + h;
      // Forwards: every block's quadratic part, and dQ's term from the state entering it.
      std::vector<BlockGrads<T>> kept(static_cast<size_t>(pr.grid.count));
      Mat<T> S = state_or_zero(s0, pr.P, bh);
      for (int64_t j = 0; j < pr.grid.count; ++j) {
        const BlockAt a = pr.grid.locate(bh, j);
        const Mat<T> G = og.of(pr, a);
        BlockGrads<T>& g = kept[static_cast<size_t>(j)];
        g = block_intra_grads(pr, a, G, want_q, want_k, want_v);
        if (!want_q) continue;
        finish_dq(pr, a, G, S, g.dq, dq);
        S = S + state_delta(pr, a);
      }
      // Backwards: the state gradient, and the dK, dV terms of the tokens entering it.
      Mat<T> R = state_or_zero(dfinal, pr.P, bh);
      for (int64_t j = pr.grid.count - 1; j >= 0; --j) {
        const BlockAt a = pr.grid.locate(bh, j);
        BlockGrads<T>& g = kept[static_cast<size_t>(j)];
        finish_dkv(pr, a, R, g.dk, g.dv, dk, dv);
        R = R + state_grad_delta(pr, a, og);
      }
      store_state(R, ds0, pr.P, bh);
    });
    return;
  }
  StateStack<T> st = want_q ? entering_states(pr, s0) : StateStack<T>(ChunkGrid(0, 0, 0, 1), 0);
  const StateStack<T> rs = state_gradients(pr, og, dfinal);
  for_each_block(pr, [&](int64_t bh, int64_t j) {
    const BlockAt a = pr.grid.locate(bh, j);
    const Mat<T> G = og.of(pr, a);
    BlockGrads<T> g = block_intra_grads(pr, a, G, want_q, want_k, want_v);
    if (want_q) finish_dq(pr, a, G, state_at(st, pr.P, bh, j), g.dq, dq);
    finish_dkv(pr, a, state_at(rs, pr.P, bh, j + 1), g.dk, g.dv, dk, dv);
  });
  for (int64_t bh = 0; bh < pr.grid.heads(); ++bh) store_state(state_at(rs, pr.P, bh, 0), ds0, pr.P, bh);
}

template <typename T>
void taylor_chunked_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                            const T* s0, T* y, T* final_state, RowStat* denominator) {
  taylor_chunked_forward_scheduled(s, a, q, k, v, s0, y, final_state, denominator, ChunkedSchedule::automatic);
}

template <typename T>
void taylor_chunked_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                             const T* s0, const T* y, const RowStat* denominator, const T* dy, const T* dfinal,
                             T* dq, T* dk, T* dv, T* ds0) {
  taylor_chunked_backward_scheduled(s, a, q, k, v, s0, y, denominator, dy, dfinal, dq, dk, dv, ds0,
                                    ChunkedSchedule::automatic);
}

// The sums: the same sweeps with args.sums set (taylor_common.h, write_outputs and output_grad).
template <typename T>
void taylor_chunked_sums_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                                 T* sums) {
  TaylorKernelArgs args = a;
  args.sums = true;
  taylor_chunked_forward<T>(s, args, q, k, v, nullptr, sums, nullptr, nullptr);
}

template <typename T>
void taylor_chunked_sums_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                                  const T* dsums, T* dq, T* dk, T* dv) {
  TaylorKernelArgs args = a;
  args.sums = true;
  taylor_chunked_backward<T>(s, args, q, k, v, nullptr, nullptr, nullptr, dsums, nullptr, dq, dk, dv, nullptr);
}

#define EAT_TAYLOR_SCHEDULED(T)                                                                                   \
  template void taylor_chunked_forward_scheduled<T>(const HeadShape&, const TaylorKernelArgs&, const T*, const T*, \
                                                    const T*, const T*, T*, T*, RowStat*, ChunkedSchedule);       \
  template void taylor_chunked_backward_scheduled<T>(const HeadShape&, const TaylorKernelArgs&, const T*,         \
                                                     const T*, const T*, const T*, const T*, const RowStat*,      \
                                                     const T*, const T*, T*, T*, T*, T*, ChunkedSchedule);
EAT_TAYLOR_SCHEDULED(float)
EAT_TAYLOR_SCHEDULED(double)
EAT_TAYLOR_INSTANTIATE(chunked, float)
EAT_TAYLOR_INSTANTIATE(chunked, double)
EAT_TAYLOR_SUMS_INSTANTIATE(float)
EAT_TAYLOR_SUMS_INSTANTIATE(double)

}  // namespace eat::cpu
