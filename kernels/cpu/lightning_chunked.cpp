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
// NaN). A block's products are register tiles (tile_gemm.h) on its rows read in place and on
// small transposed or decay-scaled copies: each output tile sums its inter- and intra-block
// products in registers, and the causal score tiles stop at the diagonal (about half the work).
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
#include "kernels/cpu/tile_gemm.h"

namespace eat::cpu {

using namespace lightning_detail;

namespace {

// n rounded up to whole vectors of T.
template <typename T>
int64_t whole_vectors(int64_t n) {
  return (n + kTileLanes<T> - 1) / kTileLanes<T> * kTileLanes<T>;
}

// Everything a block computation reads.
template <typename T>
struct Problem {
  HeadShape s;
  ChunkGrid blocks;
  std::vector<T> powers;  // lambda_h^0 .. lambda_h^C for every head, [H, C + 1]
  // Per head, lambda^(C-1) .. lambda^0 and then zeros, [H, mask_span]: row r of the decay mask,
  // M(r, c) = lambda^(r-c) for c <= r and 0 above the diagonal, is the run starting at C - 1 - r,
  // so one table of about 2 C values per head serves every row of every block (mask_row).
  std::vector<T> reversed;
  int64_t mask_span;
  const T *q, *k, *v;

  Problem(const HeadShape& shape, int64_t block, const double* decay, const T* q_, const T* k_, const T* v_)
      : s(shape),
        blocks(shape.B, shape.T, shape.H, block),
        powers(decay_power_table<T>(decay, shape.H, block)),
        mask_span(block - 1 + whole_vectors<T>(block)),
        q(q_),
        k(k_),
        v(v_) {
    reversed.assign(static_cast<size_t>(shape.H * mask_span), T(0));
    for (int64_t h = 0; h < shape.H; ++h)
      for (int64_t m = 0; m < block; ++m) reversed[h * mask_span + m] = powers_of(h)[block - 1 - m];
  }
  const T* powers_of(int64_t h) const { return powers.data() + h * (blocks.size + 1); }
  // M(r, c0 ..) of head h: row r + 1 starts one element before row r.
  const T* mask_row(int64_t h, int64_t r) const { return reversed.data() + h * mask_span + blocks.size - 1 - r; }
  // lambda^(L-1-c) for c = 0 .. L-1: how much of token c of a block of L survives to its end.
  const T* to_block_end(int64_t h, int64_t L) const { return reversed.data() + h * mask_span + blocks.size - L; }
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

// A row-major matrix operand: element (r, c) at p[r * ld + c].
template <typename T>
struct Rows {
  const T* p;
  int64_t ld;
  const T* row(int64_t r) const { return p + r * ld; }
};

// One thread's work on one block at a time: the block's tiles (transposed and decay-scaled copies
// of its rows and states, its causal score tiles) in buffers of its own that stay in L1/L2, and
// the products between them (tile_gemm.h). Both schedules run every block through the same
// calls, so the results do not depend on the schedule or the thread count.
template <typename T>
class BlockWork {
 public:
  explicit BlockWork(const Problem<T>& P) : P_(P), C_(P.blocks.size), Cp_(whole_vectors<T>(C_)) {
    const auto& s = P.s;
    T** buffers[] = {&kt_, &xt_, &scaled_, &scores_, &dscores_, &st_, &gt_, &qp_, &kp_, &vp_, &dop_};
    const int64_t sizes[] = {s.d * Cp_, s.e * Cp_, C_ * s.e, C_ * Cp_, C_ * Cp_, s.e * s.d, s.e * s.d,
                             C_ * (s.d + kPitchPad), C_ * (s.d + kPitchPad), C_ * (s.e + kPitchPad),
                             C_ * (s.e + kPitchPad)};
    constexpr int64_t kLine = 64 / sizeof(T);  // each buffer starts on a cache line
    int64_t total = 0;
    for (int64_t n : sizes) total += (n + kLine - 1) / kLine * kLine;
    T* at = scratch(total);
    for (size_t i = 0; i < std::size(sizes); ++i) {
      *buffers[i] = at;
      at += (sizes[i] + kLine - 1) / kLine * kLine;
    }
  }

  // Block a's output rows O_j = diag(lambda^(r+1)) Q S_in + [(Q K^T) o M] V (o null: skipped; s_in
  // null: zero) and its own part of the state at its end, delta = (diag(lambda^(L-1-c)) K)^T V
  // (null: skipped).
  void forward(const BlockAt& a, const T* s_in, T* o, T* delta) {
    const auto& s = P_.s;
    const Rows<T> Q = rows_of(P_.q, a, s.d), K = rows_of(P_.k, a, s.d), V = padded_rows(P_.v, a, s.e, vp_);
    transpose(K.p, K.ld, a.L, s.d, kt_, Cp_);
    if (o) {
      causal_scores(a, Q, {kt_, Cp_}, s.d, scores_);
      const Rows<T> A{scores_, Cp_};
      const T* after = P_.powers_of(a.h) + 1;  // lambda^(r+1)
      write_rows(o, a, s.e, [&]<int R, int NV, bool Partial>(RegisterTile<T, R, NV, Partial>& t, int64_t r0, int64_t c0) {
        if (s_in) {
          t.template mac<false>(Q.row(r0), Q.ld, s_in + c0, s.e, 0, s.d);
          t.scale_rows(after + r0);
        }
        t.template mac<false>(A.row(r0), A.ld, V.p + c0, V.ld, 0, std::min(a.L, r0 + R));
      });
    }
    if (delta) {
      const Rows<T> Vb = scaled_rows(V, a.L, s.e, P_.to_block_end(a.h, a.L));
      for_each_tile<T>(s.d, [&](int64_t) { return s.e; }, [&]<int R, int NV, bool Partial>(int64_t r0, int64_t c0, int last) {
        RegisterTile<T, R, NV, Partial> t(last);
        t.template mac<false>(kt_ + r0 * Cp_, Cp_, Vb.p + c0, Vb.ld, 0, a.L);
        t.store(delta + r0 * s.e + c0, s.e, false);
      });
    }
  }

  // Block a's rows of dq (from the state entering it, s_in, null: zero), of dk and dv (from the
  // gradient of the state at its end, g_out) and its own part of the gradient of the state entering
  // it, delta = (diag(lambda^(r+1)) Q)^T dO. Null outputs are skipped.
  void backward(const BlockAt& a, const T* dout, const T* s_in, const T* g_out, T* dq, T* dk, T* dv, T* delta) {
    const auto& s = P_.s;
    const T* after = P_.powers_of(a.h) + 1;  // lambda^(r+1)
    const T* to_end = P_.to_block_end(a.h, a.L);
    const Rows<T> Q = padded_rows(P_.q, a, s.d, qp_), K = padded_rows(P_.k, a, s.d, kp_);
    const Rows<T> V = rows_of(P_.v, a, s.e), dO = padded_rows(dout, a, s.e, dop_);
    const bool dq_inter = dq && s_in;
    Rows<T> dOa{};  // diag(lambda^(r+1)) dO, for the inter term of dq and for delta
    if (dq_inter || delta) dOa = scaled_rows(dO, a.L, s.e, after);
    if (dq || dk) {  // dP = (dO V^T) o M, the decayed gradient of the block's scores
      transpose(V.p, V.ld, a.L, s.e, xt_, Cp_);
      causal_scores(a, dO, {xt_, Cp_}, s.e, dscores_);
    }
    const Rows<T> dP{dscores_, Cp_};
    if (dq) {  // dQ = diag(lambda^(r+1)) dO S_in^T + dP K
      if (dq_inter) transpose(s_in, s.e, s.d, s.e, st_, s.d);
      write_rows(dq, a, s.d, [&]<int R, int NV, bool Partial>(RegisterTile<T, R, NV, Partial>& t, int64_t r0, int64_t c0) {
        if (dq_inter) t.template mac<false>(dOa.row(r0), dOa.ld, st_ + c0, s.d, 0, s.e);
        t.template mac<false>(dP.row(r0), dP.ld, K.p + c0, K.ld, 0, std::min(a.L, r0 + R));
      });
    }
    if (dk) {  // dK = diag(lambda^(L-1-c)) V G^T + dP^T Q
      transpose(g_out, s.e, s.d, s.e, gt_, s.d);
      write_rows(dk, a, s.d, [&]<int R, int NV, bool Partial>(RegisterTile<T, R, NV, Partial>& t, int64_t r0, int64_t c0) {
        t.template mac<false>(V.row(r0), V.ld, gt_ + c0, s.d, 0, s.e);
        t.scale_rows(to_end + r0);
        t.template mac<true>(dP.p + r0, dP.ld, Q.p + c0, Q.ld, r0, a.L);
      });
    }
    if (dv) {  // dV = diag(lambda^(L-1-c)) K G + A^T dO, A = (Q K^T) o M
      transpose(K.p, K.ld, a.L, s.d, kt_, Cp_);
      causal_scores(a, Q, {kt_, Cp_}, s.d, scores_);
      const Rows<T> A{scores_, Cp_};
      write_rows(dv, a, s.e, [&]<int R, int NV, bool Partial>(RegisterTile<T, R, NV, Partial>& t, int64_t r0, int64_t c0) {
        t.template mac<false>(K.row(r0), K.ld, g_out + c0, s.e, 0, s.d);
        t.scale_rows(to_end + r0);
        t.template mac<true>(A.p + r0, A.ld, dO.p + c0, dO.ld, r0, a.L);
      });
    }
    if (delta)
      for_each_tile<T>(s.d, [&](int64_t) { return s.e; }, [&]<int R, int NV, bool Partial>(int64_t r0, int64_t c0, int last) {
        RegisterTile<T, R, NV, Partial> t(last);
        t.template mac<true>(Q.p + r0, Q.ld, dOa.p + c0, dOa.ld, 0, a.L);
        t.store(delta + r0 * s.e + c0, s.e, false);
      });
  }

 private:
  // This thread's scratch memory of at least n elements, kept from call to call: allocating it
  // per call would fault in fresh pages every time. One BlockWork per thread at a time.
  static T* scratch(int64_t n) {
    thread_local std::vector<T, Eigen::aligned_allocator<T>> arena;
    if (static_cast<int64_t>(arena.size()) < n) arena.resize(static_cast<size_t>(n));
    return arena.data();
  }

  // The block's rows of a [B, T, H, width] tensor, read in place.
  Rows<T> rows_of(const T* base, const BlockAt& a, int64_t width) const {
    return {P_.blocks.row(base, a, 0, width), P_.s.H * width};
  }
  // The block's rows of a [B, T, H, width] tensor copied to `buffer` at a pitch of width +
  // kPitchPad (tile_gemm.h), for the products that read them as their B operand (A V, dP K,
  // dP^T Q, A^T dO): in place they lie H * width elements apart.
  Rows<T> padded_rows(const T* base, const BlockAt& a, int64_t width, T* buffer) const {
    const Rows<T> in = rows_of(base, a, width);
    const int64_t ld = width + kPitchPad;
    for (int64_t r = 0; r < a.L; ++r) std::copy(in.row(r), in.row(r) + width, buffer + r * ld);
    return {buffer, ld};
  }
  // diag(f) x for the first `rows` rows of x, width columns, in scaled_.
  Rows<T> scaled_rows(const Rows<T>& x, int64_t rows, int64_t width, const T* f) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c) scaled_[r * width + c] = f[r] * x.row(r)[c];
    return {scaled_, width};
  }

  // out = (X Y) o M on and below the diagonal of the block (X: L x width, Y: the other side
  // transposed, width x L, pitch Cp_), in row tiles that stop at the whole vector holding their
  // last row's diagonal: the entries computed above the diagonal are multiplied by the mask's
  // zeros, so every product that reads a row tile's columns up to its last row sees zeros there.
  // (Stopping at the diagonal itself, with masked partial vectors, made a block's forward about
  // 15% slower. The columns from L to the pitch hold whatever Y held there and are never read.)
  void causal_scores(const BlockAt& a, const Rows<T>& X, const Rows<T>& Y, int64_t width, T* out) {
    for_each_tile<T>(a.L, [&](int64_t r0) { return whole_vectors<T>(std::min(a.L, r0 + kTileRows)); },
                     [&]<int R, int NV, bool Partial>(int64_t r0, int64_t c0, int last) {
                       RegisterTile<T, R, NV, Partial> t(last);
                       t.template mac<false>(X.row(r0), X.ld, Y.p + c0, Y.ld, 0, width);
                       t.mul(P_.mask_row(a.h, r0) + c0, -1);
                       t.store(out + r0 * Cp_ + c0, Cp_, false);
                     });
  }

  // Rows [0, L) x [0, width) of the block in a [B, T, H, width] tensor, tile by tile: body(t, r0,
  // c0) sums the tile, which is then stored.
  template <typename Body>
  void write_rows(T* base, const BlockAt& a, int64_t width, Body&& body) {
    T* out = P_.blocks.row(base, a, 0, width);
    const int64_t ld = P_.s.H * width;
    for_each_tile<T>(a.L, [&](int64_t) { return width; }, [&]<int R, int NV, bool Partial>(int64_t r0, int64_t c0, int last) {
      RegisterTile<T, R, NV, Partial> t(last);
      body(t, r0, c0);
      t.store(out + r0 * ld + c0, ld, false);
    });
  }

  const Problem<T>& P_;
  int64_t C_, Cp_;  // the block size, and the row pitch of the L x L and width x L tiles
  T *kt_, *xt_, *scaled_, *scores_, *dscores_, *st_, *gt_, *qp_, *kp_, *vp_, *dop_;
};

// at(bh, j) = S_in(j) for every block j; at(bh, count) = the final state.
template <typename T>
void scan_states(const Problem<T>& P, const T* s0, const StateStack<T>& states) {
  const int64_t n = P.blocks.count, de = P.state_size();
#pragma omp parallel if(parallel_worth(P.s.B * P.s.T * P.s.H * P.s.d))
  {
    BlockWork<T> work(P);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < P.s.B * P.s.H * n; ++task)
      work.forward(P.locate(task / n, task % n), nullptr, nullptr, states.at(task / n, task % n + 1));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < P.s.B * P.s.H; ++bh) {
      if (s0) std::copy(s0 + bh * de, s0 + (bh + 1) * de, states.at(bh, 0));
      else std::fill(states.at(bh, 0), states.at(bh, 0) + de, T(0));
      const T* p = P.powers_of(bh % P.s.H);
      for (int64_t j = 0; j < n; ++j)
        fold_state(states.at(bh, j + 1), states.at(bh, j), p[P.locate(bh, j).L], de);
    }
  }
}

// at(bh, j + 1) = G_out(j) for every block j; at(bh, 0) = dS0.
template <typename T>
void scan_state_grads(const Problem<T>& P, const T* dout, const T* dfinal, const StateStack<T>& grads) {
  const int64_t n = P.blocks.count, de = P.state_size();
#pragma omp parallel if(parallel_worth(P.s.B * P.s.T * P.s.H * P.s.d))
  {
    BlockWork<T> work(P);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < P.s.B * P.s.H * n; ++task)
      work.backward(P.locate(task / n, task % n), dout, nullptr, nullptr, nullptr, nullptr, nullptr,
                    grads.at(task / n, task % n));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < P.s.B * P.s.H; ++bh) {
      std::copy(dfinal + bh * de, dfinal + (bh + 1) * de, grads.at(bh, n));
      const T* p = P.powers_of(bh % P.s.H);
      for (int64_t j = n - 1; j >= 0; --j)
        fold_state(grads.at(bh, j), grads.at(bh, j + 1), p[P.locate(bh, j).L], de);
    }
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
    {
      BlockWork<T> work(P);
      for_each_head_group(P.blocks.heads(), P.state_bytes(), [&](int64_t lo, int64_t hi) {
        HeadStates<T> st(lo, hi, de);
        st.load(s0);
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t bh = lo; bh < hi; ++bh) prefetch_block<T>(P.blocks, bh, j + 1, {{q, s.d}, {k, s.d}, {v, s.e}});
          for (int64_t bh = lo; bh < hi; ++bh) {
            const BlockAt a = P.locate(bh, j);
            T* state = st.current(bh);
            if (block_states) stream_copy(state, block_states + (bh * n + j) * de, de);
            work.forward(a, j > 0 || s0 ? state : nullptr, o, st.next(bh));
            fold_state(st.next(bh), state, P.powers_of(a.h)[a.L], de);
            st.advance(bh);
          }
        }
        st.store(final_state);
        stream_fence();
      });
    }
    return;
  }
  StateStack<T> states(P.blocks, de);
  scan_states(P, s0, states);
#pragma omp parallel if(parallel_worth(s.B * s.T * s.H * s.d))
  {
    BlockWork<T> work(P);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < s.B * s.H * n; ++task) {
      const int64_t bh = task / n, j = task % n;
      work.forward(P.locate(bh, j), j > 0 || s0 ? states.at(bh, j) : nullptr, o, nullptr);
    }
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
    {
      BlockWork<T> work(P);
      for_each_head_group(P.blocks.heads(), P.state_bytes(), [&](int64_t lo, int64_t hi) {
        HeadStates<T> st(lo, hi, de);
        if (dq && !dq_from_saved) {
          st.load(s0);
          for (int64_t j = 0; j < n; ++j)
            for (int64_t bh = lo; bh < hi; ++bh) {
              const BlockAt a = P.locate(bh, j);
              T* state = st.current(bh);
              work.backward(a, dout, j > 0 || s0 ? state : nullptr, nullptr, dq, nullptr, nullptr, nullptr);
              if (j + 1 == n) continue;  // the final state is not needed here
              work.forward(a, nullptr, nullptr, st.next(bh));
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
              work.backward(a, dout, s_in, grad, dq_from_saved ? dq : nullptr, dk, dv, st.next(bh));
              fold_state(st.next(bh), grad, P.powers_of(a.h)[a.L], de);
              st.advance(bh);
            }
          }
          if (ds0) st.store(ds0);
        }
      });
    }
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
#pragma omp parallel if(parallel_worth(s.B * s.T * s.H * s.d))
  {
    BlockWork<T> work(P);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < s.B * s.H * n; ++task) {
      const int64_t bh = task / n, j = task % n;
      const T* s_in = dq && (j > 0 || s0) ? state_in(bh, j) : nullptr;
      const T* g_out = need_grads ? grads->at(bh, j + 1) : nullptr;
      work.backward(P.locate(bh, j), dout, s_in, g_out, dq, dk, dv, nullptr);
    }
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
