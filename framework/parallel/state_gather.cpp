#include "framework/parallel/state_gather.h"

#include <vector>

#include "framework/autograd.h"
#include "framework/ops.h"
#include "framework/parallel/collective_ops.h"

namespace eat {

StateGather::StateGather(const Tensor& local_state, Communicator& group)
    : local_(local_state), sent_(local_state.detach()), group_(group), pending_(group.all_gather_async(sent_)) {}

StateGather::~StateGather() = default;

void StateGather::wait() {
  if (pending_) gathered_ = std::exchange(pending_, nullptr)->wait();
}

Tensor tie_to(const Tensor& result, const Tensor& tied) {
  if (!autograd::needs_record({&result, &tied})) return result;
  Tensor out = result.detach();
  autograd::record("tie_to", {result, tied}, {out},
                   [shape = tied.shape(), dtype = tied.dtype(), device = tied.device()](const std::vector<Tensor>& g) {
                     return std::vector<Tensor>{g[0], Tensor::zeros(shape, dtype, device)};
                   });
  return out;
}

Tensor StateGather::fold(const StateFold& fold, bool reads_every_rank) {
  wait();
  record_all_gather(group_, local_, gathered_);
  Tensor incoming = fold(gathered_, group_.rank());
  return reads_every_rank ? incoming : tie_to(incoming, gathered_);
}

Tensor gather_states(const Tensor& local_state, Communicator& group, const StateFold& fold, bool reads_every_rank) {
  StateGather gather(local_state, group);
  return gather.fold(fold, reads_every_rank);
}

std::pair<Tensor, Tensor> gather_state_pair(const Tensor& a, const Tensor& b, Communicator& group) {
  auto whole = [](const Tensor& gathered, int) { return gathered; };
  Tensor all_a = gather_states(a, group, whole, true);
  Tensor all_b = gather_states(tie_to(b, all_a), group, whole, true);
  return {all_a, all_b};
}

Tensor rank_weighted_sum(const Tensor& gathered, const Tensor& weights) {
  const int64_t S = gathered.size(0), n = gathered.numel() / S;
  Shape one = gathered.shape();
  one.erase(one.begin());
  Tensor weighted = reshape(mul(gathered, weights), {S, n});
  Tensor ones = Tensor::full({1, S}, 1.0, gathered.dtype());
  ones.move_to_(gathered.device());
  return reshape(matmul(ones, weighted), one);
}

Tensor prefix_weights(const Tensor& gathered, int rank) {
  const int64_t n = gathered.numel() / gathered.size(0);
  std::vector<double> w(static_cast<size_t>(gathered.numel()), 0.0);
  std::fill_n(w.begin(), static_cast<int64_t>(rank) * n, 1.0);
  Tensor out = Tensor::from_vector<double>(w, gathered.shape()).to(gathered.dtype());
  out.move_to_(gathered.device());
  return out;
}

Tensor affine_prefix(const Tensor& gathered_a, const Tensor& gathered_b, int rank) {
  auto row = [](const Tensor& g, int j) {
    Shape s = g.shape();
    s.erase(s.begin());
    return reshape(slice_outer(g, j, j + 1), s);
  };
  if (rank == 0) return tie_to(scale(row(gathered_b, 0), 0.0), gathered_a);  // zero, still a function of both
  Tensor m = row(gathered_b, 0);                                                 // A_0 0 + b_0
  for (int j = 1; j < rank; ++j) m = add(matmul(row(gathered_a, j), m), row(gathered_b, j));
  return rank == 1 ? tie_to(m, gathered_a) : m;
}

}  // namespace eat
