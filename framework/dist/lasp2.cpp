#include "framework/dist/lasp2.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/dist/comm_stats.h"
#include "framework/dist/halo.h"
#include "framework/dist/time_rows.h"
#include "framework/error.h"

namespace eat {

namespace {

// Makes out = the gather of x differentiable: the backward sums the gradient over the ranks and
// hands each rank its slice (ReduceScatter).
void record_gather(Communicator& group, const Tensor& x, const Tensor& out) {
  if (!autograd::needs_record({&x})) return;
  autograd::record("all_gather", {x}, {out},
                   [&group, shape = out.shape(), dtype = out.dtype(), device = out.device(),
                    label = current_comm_label()](const std::vector<Tensor>& g) {
                     // Every rank must take part even when no gradient reached its copy: it sends zeros then.
                     Tensor grad = g[0].defined() ? g[0] : Tensor::zeros(shape, dtype, device);
                     CommLabel scope(label);  // booked to the layer that gathered
                     return std::vector<Tensor>{group.reduce_scatter_sum(grad)};
                   });
}

}  // namespace

Tensor all_gather_op(Communicator& group, const Tensor& x) {
  Tensor out = group.all_gather(x.detach());
  record_gather(group, x, out);
  return out;
}

namespace {

// The weights of the gathered states in rank r's incoming state, laid out like the gathered
// states [S, B, H, d, e]: lambda_h^(L (r - 1 - j)) for earlier ranks j < r, 0 for the others.
// Built on the host (S B H d e numbers, the size of the gathered states) and sent to their device.
Tensor incoming_weights(const Tensor& states, const std::vector<double>& decay, int64_t L, int r) {
  const int64_t B = states.size(1), H = states.size(2), inner = states.size(3) * states.size(4);
  std::vector<double> w(static_cast<size_t>(states.numel()), 0.0);
  for (int64_t j = 0; j < r; ++j)
    for (int64_t h = 0; h < H; ++h) {
      // A non-negative power of lambda <= 1: deep ranks underflow to 0, never overflow.
      const double f = std::pow(decay[static_cast<size_t>(h)], static_cast<double>(L * (r - 1 - j)));
      for (int64_t b = 0; b < B; ++b)
        std::fill_n(w.begin() + ((j * B + b) * H + h) * inner, inner, f);
    }
  return Tensor::from_vector<double>(w, states.shape()).to(states.dtype()).to(states.device());
}

}  // namespace

Tensor lightning_attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<double>& decay,
                              Communicator& sp_group, const LinearAttentionOptions& options, bool overlap) {
  const int S = sp_group.size(), r = sp_group.rank();
  if (S == 1) return lightning_attention(q, k, v, decay, Tensor(), options).first;
  // This rank's state comes first (a cheap O(L d e) sum), so that its gather can run while the
  // local attention, the expensive part, is computed. Both paths do the same arithmetic.
  Tensor final_state = decayed_state_sum(k, v, decay);
  Tensor local, states;  // states: the gathered m_j [S, B, H, d, e]
  if (overlap) {
    Tensor sent = final_state.detach();
    std::unique_ptr<PendingGather> gathering = sp_group.all_gather_async(sent);
    local = lightning_attention(q, k, v, decay, Tensor(), options).first;
    states = gathering->wait();
    record_gather(sp_group, final_state, states);
  } else {
    states = all_gather_op(sp_group, final_state);
    local = lightning_attention(q, k, v, decay, Tensor(), options).first;
  }
  // incoming = sum_j w_j m_j over ALL ranks' states (weight 0 for j >= r, so rank 0's is zero):
  // every rank's graph then reaches the AllGather, whose backward is a collective all must join.
  // The weighted sum is one elementwise product and a [1, S] x [S, B H d e] product.
  const int64_t n = final_state.numel();
  Tensor weighted = reshape(mul(states, incoming_weights(states, decay, q.size(1), r)), {S, n});
  Tensor ones = Tensor::full({1, S}, 1.0, states.dtype()).to(states.device());
  Tensor incoming = reshape(matmul(ones, weighted), final_state.shape());
  return add(local, decayed_state_readout(q, incoming, decay));
}

namespace {

// [S, B, L, H, w] -> [B, S L, H, w] (rank-major pieces to one time axis), and back in the backward.
Tensor join_time(const Tensor& pieces) {
  const int64_t S = pieces.size(0), B = pieces.size(1), L = pieces.size(2), row = pieces.size(3) * pieces.size(4);
  const size_t bytes = static_cast<size_t>(L * row) * dtype_size(pieces.dtype());
  // Rank s's piece of sequence b sits at (s B + b) in the pieces and at (b S + s) once joined:
  // per rank, B blocks of `bytes` with pitch `bytes` on the split side and S `bytes` joined.
  auto move = [=](const Tensor& from, const Tensor& to, bool forward) {
    const char* src = static_cast<const char*>(from.raw_data());
    char* dst = static_cast<char*>(to.raw_data());
    for (int64_t s = 0; s < S; ++s) {
      const size_t split = static_cast<size_t>(s * B) * bytes, joined = static_cast<size_t>(s) * bytes;
      if (forward)
        copy_blocks(dst + joined, S * bytes, src + split, bytes, bytes, B, from.device());
      else
        copy_blocks(dst + split, bytes, src + joined, S * bytes, bytes, B, from.device());
    }
  };
  Tensor out = Tensor::empty({B, S * L, pieces.size(3), pieces.size(4)}, pieces.dtype(), pieces.device());
  move(pieces, out, true);
  if (autograd::needs_record({&pieces})) {
    // Only the pieces' shape, type and device: the gathered pieces need not live until backward.
    autograd::record("join_time", {pieces}, {out},
                     [move, shape = pieces.shape(), dtype = pieces.dtype(), device = pieces.device()](
                         const std::vector<Tensor>& g) {
      Tensor back = Tensor::empty(shape, dtype, device);
      move(g[0], back, false);
      return std::vector<Tensor>{back};
    });
  }
  return out;
}

}  // namespace

Tensor windowed_attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& sp_group,
                             AttentionOptions options) {
  EAT_CHECK(options.window_left >= 0, "windowed_attention_sp: needs a sliding window, got window_left = ",
            options.window_left);
  // The first query of this rank reaches window_left keys back; rows before the sequence start
  // (zeros from the exchange) must not become keys, so they are cut off here.
  const int64_t W = options.window_left, L = q.size(1), t0 = static_cast<int64_t>(sp_group.rank()) * L;
  const int64_t valid = std::min(W, t0);
  Tensor keys = narrow_time(halo_exchange(k, W, sp_group), W - valid, W + L);
  Tensor values = narrow_time(halo_exchange(v, W, sp_group), W - valid, W + L);
  options.query_offset = valid;
  return attention(q, keys, values, options);
}

Tensor attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& sp_group, AttentionOptions options) {
  EAT_CHECK(options.causal, "attention_sp: sequence parallelism splits causal attention only");
  EAT_CHECK(options.impl == AttentionImpl::tiled, "attention_sp: needs the tiled kernel");
  if (sp_group.size() == 1) return attention(q, k, v, options);
  if (options.window_left >= 0) return windowed_attention_sp(q, k, v, sp_group, options);
  Tensor keys = join_time(all_gather_op(sp_group, k));
  Tensor values = join_time(all_gather_op(sp_group, v));
  options.query_offset = static_cast<int64_t>(sp_group.rank()) * q.size(1);
  return attention(q, keys, values, options);
}

}  // namespace eat
