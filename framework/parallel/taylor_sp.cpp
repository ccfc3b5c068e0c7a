#include "framework/parallel/taylor_sp.h"

#include "framework/parallel/state_gather.h"

namespace eat {

Tensor taylor_attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& sp_group,
                           const TaylorOptions& options, bool overlap) {
  if (sp_group.size() == 1) return taylor_attention(q, k, v, Tensor(), options).first;
  // The state first (O(L D' e), no outputs), so that its gather runs during the local pass.
  StateGather gather(taylor_state_sum(k, v), sp_group);
  if (!overlap) gather.wait();  // tests compare both
  Tensor sums = taylor_attention_sums(q, k, v, options);
  // incoming = sum_{j < r} state_j, folded over ALL ranks' states (weight 0 for j >= r): every
  // rank's graph then reaches the AllGather, whose backward is a collective all must join.
  Tensor incoming = gather.fold(
      [](const Tensor& states, int rank) { return rank_weighted_sum(states, prefix_weights(states, rank)); },
      /*reads_every_rank=*/true);
  return taylor_state_readout(q, incoming, sums, options);
}

}  // namespace eat
