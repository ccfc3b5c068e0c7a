#pragma once
// The state AllGather of sequence parallelism (LASP-2, spec: lasp2.md) with a caller-supplied
// fold. Rank r of the group holds tokens [r L, (r + 1) L) and summarises them in a local state
// whose size does not depend on L (Lightning's decayed k^T v sum, BASED's [S | z], Titans' affine
// summary). Every rank gathers every rank's state, and a fold combines the earlier ranks' states
// into this rank's incoming state; all differentiable, the gradients of the gathered states going
// back to their ranks (ReduceScatter).
//
//   StateGather gather(local_state, group);   // the gather starts here...
//   Tensor local = ...;                       // ...and runs while this rank computes its share
//   Tensor incoming = gather.fold(fold);      // then waits and folds
//
// Folds are ordinary differentiable ops on the gathered states [S, ...local_state.shape]; the
// ones below cover the decayed sum, the plain prefix sum and the affine recurrence.
#include <functional>
#include <memory>
#include <utility>

#include "framework/comm/communicator.h"
#include "framework/tensor.h"

namespace eat {

// gathered [S, ...] (rank-major: row j is rank j's state), this rank -> its incoming state.
using StateFold = std::function<Tensor(const Tensor& gathered, int rank)>;

class StateGather {
 public:
  // Starts gathering local_state over the group (its value is taken now; keep it unchanged).
  StateGather(const Tensor& local_state, Communicator& group);
  ~StateGather();
  StateGather(const StateGather&) = delete;
  StateGather& operator=(const StateGather&) = delete;

  // Waits for the gathered states (fold waits anyway): calling it before the local compute turns
  // the overlap off, with the same arithmetic.
  void wait();
  // Waits, makes the gathered states differentiable, and returns fold(gathered, rank).
  // reads_every_rank: the fold's result depends on `gathered` on every rank (weights of zero
  // count), which the gather's collective backward needs on every rank. When false the result is
  // also tied to the gathered states with a zero gradient (tie_to), so a rank whose fold reads no
  // state (rank 0, usually) still joins the backward.
  Tensor fold(const StateFold& fold, bool reads_every_rank = false);

 private:
  Tensor local_, sent_, gathered_;
  Communicator& group_;
  std::unique_ptr<PendingGather> pending_;
};

// The whole step at once, without overlap.
Tensor gather_states(const Tensor& local_state, Communicator& group, const StateFold& fold,
                     bool reads_every_rank = false);

// Two local states gathered one after the other, [S, ...a] and [S, ...b], for a fold that reads
// both. The backward's two ReduceScatters must run in the same order on every rank, and a fold
// whose graph differs by rank (a prefix) does not fix one: b's gather is made to depend on a's,
// so every rank runs b's backward first.
std::pair<Tensor, Tensor> gather_state_pair(const Tensor& a, const Tensor& b, Communicator& group);

// result itself, recording that it also depends on `tied` with a zero gradient: a backward from
// it then reaches the op that produced `tied` (a collective every rank must join).
Tensor tie_to(const Tensor& result, const Tensor& tied);

// sum_j w_j * gathered_j over the ranks for weights w [S, ...] shaped like the gathered states
// (elementwise): an elementwise product and one [1, S] x [S, n] product. With w_j = 0 for j >= r
// it reads every rank's row (use reads_every_rank = true).
Tensor rank_weighted_sum(const Tensor& gathered, const Tensor& weights);
// The weights of a plain prefix sum for rank r: 1 for the ranks j < r, 0 for the others, in the
// gathered states' shape, type and device (BASED's [S | z]: incoming = sum_{j<r} state_j).
Tensor prefix_weights(const Tensor& gathered, int rank);

// The affine recurrence of per-rank summaries M_in(0) = 0, M_in(r) = A_{r-1} M_in(r-1) + b_{r-1}
// (Titans' linear memory: A = Phi [.., n, n], b = c [.., n, m], matrix products over the last two
// axes), from the gathered A [S, .., n, n] and b [S, .., n, m] (gather_state_pair), folded in
// rank order; the result depends on both on every rank.
Tensor affine_prefix(const Tensor& gathered_a, const Tensor& gathered_b, int rank);

}  // namespace eat
