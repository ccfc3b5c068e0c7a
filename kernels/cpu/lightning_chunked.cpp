// Lightning Attention-2 on the CPU. With S_in(j) the state entering block j (the state after the
// token just before it; S_in(0) = S0) and L the block's length:
//     O_j         = [(Q_j K_j^T) o M] V_j + diag(lambda^(r+1)) Q_j S_in(j),   M(r, c) = lambda^(r-c), c <= r
//     S_in(j + 1) = lambda^L S_in(j) + sum_c lambda^(L-1-c) k_c^T v_c         (the last one is the final state)
// and backwards, with G_out(j) the gradient of the state at block j's end (G_out(last) = dfinal):
//     G_out(j - 1) = lambda^L G_out(j) + sum_r lambda^(r+1) q_r^T do_r        (G_out(-1) = dS0)
//     dQ_j = [(dO_j V_j^T) o M] K_j + diag(lambda^(r+1)) dO_j S_in(j)^T
//     dK_j = [(dO_j V_j^T) o M]^T Q_j + diag(lambda^(L-1-c)) V_j G_out(j)^T
//     dV_j = [(Q_j K_j^T) o M]^T dO_j + diag(lambda^(L-1-c)) K_j G_out(j)
// Every decay is lambda to a NON-NEGATIVE power (r - c, r + 1, L - 1 - c, L), never lambda^-r,
// so a strong decay over a long block underflows to 0 instead of overflowing to inf (inf * 0 =
// NaN). The causal tiles are computed and used through triangular views (half the work).
//
// The per-block pieces below are shared by both schedules (kernels/cpu/chunk_schedule.h); each task
// writes only its own rows and states, in a fixed order, so no atomics are needed and the
// result does not depend on the thread count or the schedule.
#include <algorithm>
#include <cmath>
#include <memory>

#include "kernels/cpu/chunk_schedule.h"
#include "kernels/cpu/lightning_chunked.h"
#include "kernels/cpu/parallel.h"

namespace eat::cpu {

using namespace lightning_detail;

namespace {

// Everything a block computation reads.
template <typename T>
struct Problem {
  HeadShape s;
  ChunkGrid blocks;
  std::vector<T> powers;  // lambda_h^0 .. lambda_h^C for every head, [H, C + 1]
  const T *q, *k, *v;

  Problem(const HeadShape& shape, int64_t block, const double* decay, const T* q_, const T* k_, const T* v_)
      : s(shape),
        blocks(shape.B, shape.T, shape.H, block),
        powers(decay_power_table<T>(decay, shape.H, block)),
        q(q_),
        k(k_),
        v(v_) {}
  const T* powers_of(int64_t h) const { return powers.data() + h * (blocks.size + 1); }
  int64_t state_size() const { return s.d * s.e; }
  int64_t state_bytes() const { return state_size() * static_cast<int64_t>(sizeof(T)); }
  BlockAt locate(int64_t bh, int64_t j) const { return blocks.locate(bh, j); }
};

// next = decay * prev + next with a single rounding per element (fma), so the state scan gives
// the same bits whichever schedule runs it and however the compiler contracts.
template <typename T>
void fold_state(T* next, const T* prev, T decay, int64_t n) {
  for (int64_t i = 0; i < n; ++i) next[i] = std::fma(decay, prev[i], next[i]);
}

// Rows of one block, row c scaled by lambda^(L-1-c): the weights with which these tokens enter
// the state at the block's end.
template <typename T>
Mat<T> scaled_to_block_end(ConstView<T> x, const T* p) {
  Mat<T> out = x;
  scale_rows_to_end(out, p);
  return out;
}

// The block's decayed causal scores (X Y^T) o M, lower triangle only.
template <typename T>
Mat<T> block_scores(ConstView<T> x, ConstView<T> y, const T* p) {
  Mat<T> a(x.rows(), y.rows());
  a.template triangularView<Eigen::Lower>() = x * y.transpose();
  apply_decay_mask(a, p);
  return a;
}

// out = sum_c lambda^(L-1-c) k_c^T v_c: the block's own part of the state at its end.
template <typename T>
void block_state_delta(const Problem<T>& P, const BlockAt& a, T* out) {
  const auto& s = P.s;
  Mat<T> Kd = scaled_to_block_end(head_rows(P.k, s, a.b, a.h, a.t0, a.L, s.d), P.powers_of(a.h));
  State<T>(out, s.d, s.e).noalias() = Kd.transpose() * head_rows(P.v, s, a.b, a.h, a.t0, a.L, s.e);
}

// out = sum_r lambda^(r+1) q_r^T do_r: the block's own part of the gradient of the state entering it.
template <typename T>
void block_grad_delta(const Problem<T>& P, const BlockAt& a, const T* dout, T* out) {
  const auto& s = P.s;
  Mat<T> Qd = head_rows(P.q, s, a.b, a.h, a.t0, a.L, s.d);
  scale_rows(Qd, P.powers_of(a.h) + 1);
  State<T>(out, s.d, s.e).noalias() = Qd.transpose() * head_rows(dout, s, a.b, a.h, a.t0, a.L, s.e);
}

// O_j from the block's tile and the state entering it (null: zero, the term is skipped).
template <typename T>
void block_output(const Problem<T>& P, const BlockAt& a, const T* s_in, T* o) {
  const auto& s = P.s;
  const T* p = P.powers_of(a.h);
  auto Q = head_rows(P.q, s, a.b, a.h, a.t0, a.L, s.d);
  auto O = head_rows(o, s, a.b, a.h, a.t0, a.L, s.e);
  Mat<T> A = block_scores(Q, head_rows(P.k, s, a.b, a.h, a.t0, a.L, s.d), p);
  O.noalias() = A.template triangularView<Eigen::Lower>() * head_rows(P.v, s, a.b, a.h, a.t0, a.L, s.e);
  if (s_in) {
    Mat<T> inter = Q * ConstState<T>(s_in, s.d, s.e);
    scale_rows(inter, p + 1);
    O += inter;
  }
}

// The block's rows of dq (from the state entering it, s_in, null: zero) and of dk and dv (from
// the gradient of the state at its end, g_out). Null outputs are skipped.
template <typename T>
void block_input_grads(const Problem<T>& P, const BlockAt& a, const T* dout, const T* s_in, const T* g_out, T* dq,
                       T* dk, T* dv) {
  const auto& s = P.s;
  const T* p = P.powers_of(a.h);
  auto Q = head_rows(P.q, s, a.b, a.h, a.t0, a.L, s.d);
  auto K = head_rows(P.k, s, a.b, a.h, a.t0, a.L, s.d);
  auto V = head_rows(P.v, s, a.b, a.h, a.t0, a.L, s.e);
  auto dO = head_rows(dout, s, a.b, a.h, a.t0, a.L, s.e);
  if (dq || dk) {
    Mat<T> dP = block_scores(dO, V, p);  // d(loss)/d(scores) within the block, decayed
    if (dq) {
      auto dQ = head_rows(dq, s, a.b, a.h, a.t0, a.L, s.d);
      dQ.noalias() = dP.template triangularView<Eigen::Lower>() * K;
      if (s_in) {
        Mat<T> inter = dO * ConstState<T>(s_in, s.d, s.e).transpose();
        scale_rows(inter, p + 1);
        dQ += inter;
      }
    }
    if (dk) {
      auto dK = head_rows(dk, s, a.b, a.h, a.t0, a.L, s.d);
      dK.noalias() = dP.template triangularView<Eigen::Lower>().transpose() * Q;
      dK.noalias() += scaled_to_block_end(V, p) * ConstState<T>(g_out, s.d, s.e).transpose();
    }
  }
  if (dv) {
    auto dV = head_rows(dv, s, a.b, a.h, a.t0, a.L, s.e);
    Mat<T> A = block_scores(Q, K, p);
    dV.noalias() = A.template triangularView<Eigen::Lower>().transpose() * dO;
    dV.noalias() += scaled_to_block_end(K, p) * ConstState<T>(g_out, s.d, s.e);
  }
}

// at(bh, j) = S_in(j) for every block j; at(bh, count) = the final state.
template <typename T>
void scan_states(const Problem<T>& P, const T* s0, const StateStack<T>& states) {
  const int64_t n = P.blocks.count, de = P.state_size();
#pragma omp parallel for schedule(static) if(parallel_worth(P.s.B * P.s.T * P.s.H * P.s.d))
  for (int64_t task = 0; task < P.s.B * P.s.H * n; ++task)
    block_state_delta(P, P.locate(task / n, task % n), states.at(task / n, task % n + 1));
#pragma omp parallel for schedule(static) if(parallel_worth(P.s.B * P.s.T * P.s.H * P.s.d))
  for (int64_t bh = 0; bh < P.s.B * P.s.H; ++bh) {
    if (s0) std::copy(s0 + bh * de, s0 + (bh + 1) * de, states.at(bh, 0));
    else std::fill(states.at(bh, 0), states.at(bh, 0) + de, T(0));
    const T* p = P.powers_of(bh % P.s.H);
    for (int64_t j = 0; j < n; ++j)
      fold_state(states.at(bh, j + 1), states.at(bh, j), p[P.locate(bh, j).L], de);
  }
}

// at(bh, j + 1) = G_out(j) for every block j; at(bh, 0) = dS0.
template <typename T>
void scan_state_grads(const Problem<T>& P, const T* dout, const T* dfinal, const StateStack<T>& grads) {
  const int64_t n = P.blocks.count, de = P.state_size();
#pragma omp parallel for schedule(static) if(parallel_worth(P.s.B * P.s.T * P.s.H * P.s.d))
  for (int64_t task = 0; task < P.s.B * P.s.H * n; ++task)
    block_grad_delta(P, P.locate(task / n, task % n), dout, grads.at(task / n, task % n));
#pragma omp parallel for schedule(static) if(parallel_worth(P.s.B * P.s.T * P.s.H * P.s.d))
  for (int64_t bh = 0; bh < P.s.B * P.s.H; ++bh) {
    std::copy(dfinal + bh * de, dfinal + (bh + 1) * de, grads.at(bh, n));
    const T* p = P.powers_of(bh % P.s.H);
    for (int64_t j = n - 1; j >= 0; --j)
      fold_state(grads.at(bh, j), grads.at(bh, j + 1), p[P.locate(bh, j).L], de);
  }
}

}  // namespace

template <typename T>
void lightning_chunked_forward(const HeadShape& s, int64_t block, const double* decay, const T* q,
                               const T* k, const T* v, const T* s0, T* o, T* final_state, ChunkedSchedule schedule,
                               T* block_states) {
  const Problem<T> P(s, block, decay, q, k, v);
  const int64_t n = P.blocks.count, de = P.state_size();
  if (prefer_per_head(schedule, s.B * s.H)) {
#pragma omp parallel if(parallel_worth(s.B * s.T * s.H * s.d))
    for_each_head_group(P.blocks.heads(), P.state_bytes(), [&](int64_t lo, int64_t hi) {
      HeadStates<T> st(lo, hi, de);
      st.load(s0);
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t bh = lo; bh < hi; ++bh) prefetch_block<T>(P.blocks, bh, j + 1, {{q, s.d}, {k, s.d}, {v, s.e}});
        for (int64_t bh = lo; bh < hi; ++bh) {
          const BlockAt a = P.locate(bh, j);
          T* state = st.current(bh);
          if (block_states) stream_copy(state, block_states + (bh * n + j) * de, de);
          block_output<T>(P, a, j > 0 || s0 ? state : nullptr, o);
          block_state_delta(P, a, st.next(bh));
          fold_state(st.next(bh), state, P.powers_of(a.h)[a.L], de);
          st.advance(bh);
        }
      }
      st.store(final_state);
      stream_fence();
    });
    return;
  }
  StateStack<T> states(P.blocks, de);
  scan_states(P, s0, states);
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t task = 0; task < s.B * s.H * n; ++task) {
    const int64_t bh = task / n, j = task % n;
    block_output<T>(P, P.locate(bh, j), j > 0 || s0 ? states.at(bh, j) : nullptr, o);
  }
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    std::copy(states.at(bh, n), states.at(bh, n) + de, final_state + bh * de);
    if (block_states) std::copy(states.at(bh, 0), states.at(bh, n), block_states + bh * n * de);
  }
}

template <typename T>
void lightning_chunked_backward(const HeadShape& s, int64_t block, const double* decay, const T* q,
                                const T* k, const T* v, const T* s0, const T* dout, const T* dfinal, T* dq, T* dk,
                                T* dv, T* ds0, ChunkedSchedule schedule, const T* block_states) {
  const Problem<T> P(s, block, decay, q, k, v);
  const int64_t n = P.blocks.count, de = P.state_size();
  const bool need_grads = dk || dv || ds0;  // these need the state gradients; dq needs the states
  // dq needs the state entering each block: the forward's saved states, or a forward sweep that
  // rebuilds them. With saved states the backward sweep computes dq alongside dk and dv.
  const bool dq_from_saved = dq && block_states;
  if (prefer_per_head(schedule, s.B * s.H)) {
    // Per head: a forward sweep re-running the states for dq (unless saved), then a backward sweep
    // with the state gradient for dk, dv, dS0 (and dq from the saved states). A state cannot be
    // recovered backwards without dividing by lambda.
#pragma omp parallel if(parallel_worth(s.B * s.T * s.H * s.d))
    for_each_head_group(P.blocks.heads(), P.state_bytes(), [&](int64_t lo, int64_t hi) {
      HeadStates<T> st(lo, hi, de);
      if (dq && !dq_from_saved) {
        st.load(s0);
        for (int64_t j = 0; j < n; ++j)
          for (int64_t bh = lo; bh < hi; ++bh) {
            const BlockAt a = P.locate(bh, j);
            T* state = st.current(bh);
            block_input_grads<T>(P, a, dout, j > 0 || s0 ? state : nullptr, nullptr, dq, nullptr, nullptr);
            if (j + 1 == n) continue;  // the final state is not needed here
            block_state_delta(P, a, st.next(bh));
            fold_state(st.next(bh), state, P.powers_of(a.h)[a.L], de);
            st.advance(bh);
          }
      }
      if (need_grads || dq_from_saved) {
        st.load(dfinal);
        for (int64_t j = n - 1; j >= 0; --j) {
          for (int64_t bh = lo; bh < hi; ++bh)
            prefetch_block<T>(P.blocks, bh, j - 1, {{q, s.d}, {k, s.d}, {v, s.e}, {dout, s.e}});
          for (int64_t bh = lo; bh < hi; ++bh) {
            const BlockAt a = P.locate(bh, j);
            T* grad = st.current(bh);
            const T* s_in = dq_from_saved && (j > 0 || s0) ? block_states + (bh * n + j) * de : nullptr;
            block_input_grads<T>(P, a, dout, s_in, grad, dq_from_saved ? dq : nullptr, dk, dv);
            block_grad_delta(P, a, dout, st.next(bh));
            fold_state(st.next(bh), grad, P.powers_of(a.h)[a.L], de);
            st.advance(bh);
          }
        }
        if (ds0) st.store(ds0);
      }
    });
    return;
  }
  std::unique_ptr<StateStack<T>> states, grads;
  if (dq && !dq_from_saved) {
    states = std::make_unique<StateStack<T>>(P.blocks, de);
    scan_states(P, s0, *states);
  }
  auto state_in = [&](int64_t bh, int64_t j) -> const T* {
    return dq_from_saved ? block_states + (bh * n + j) * de : states->at(bh, j);
  };
  if (need_grads) {
    grads = std::make_unique<StateStack<T>>(P.blocks, de);
    scan_state_grads(P, dout, dfinal, *grads);
  }
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t task = 0; task < s.B * s.H * n; ++task) {
    const int64_t bh = task / n, j = task % n;
    const T* s_in = dq && (j > 0 || s0) ? state_in(bh, j) : nullptr;
    const T* g_out = need_grads ? grads->at(bh, j + 1) : nullptr;
    block_input_grads<T>(P, P.locate(bh, j), dout, s_in, g_out, dq, dk, dv);
  }
  if (ds0)
    for (int64_t bh = 0; bh < s.B * s.H; ++bh) std::copy(grads->at(bh, 0), grads->at(bh, 0) + de, ds0 + bh * de);
}

#define EAT_INSTANTIATE(T)                                                                                          \
  template void lightning_chunked_forward<T>(const HeadShape&, int64_t, const double*, const T*,       \
                                             const T*, const T*, const T*, T*, T*, ChunkedSchedule, T*);          \
  template void lightning_chunked_backward<T>(const HeadShape&, int64_t, const double*, const T*,      \
                                              const T*, const T*, const T*, const T*, const T*, T*, T*, T*, T*,   \
                                              ChunkedSchedule, const T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)
#undef EAT_INSTANTIATE

}  // namespace eat::cpu
