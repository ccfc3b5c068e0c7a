#include "framework/dist/lasp2.h"

#include <cmath>
#include <cstring>

#include "framework/autograd.h"
#include "framework/error.h"

namespace eat {

Tensor all_gather_op(Communicator& group, const Tensor& x) {
  Tensor out = group.all_gather(x.detach());
  if (autograd::needs_record({&x})) {
    autograd::record("all_gather", {x}, {out}, [&group, shape = out.shape(), dtype = out.dtype()](const std::vector<Tensor>& g) {
      // Every rank must take part even when no gradient reached its copy: it sends zeros then.
      Tensor grad = g[0].defined() ? g[0] : Tensor::zeros(shape, dtype);
      return std::vector<Tensor>{group.reduce_scatter_sum(grad)};
    });
  }
  return out;
}

namespace {

// x [B, H, d, e] with head h multiplied by factor[h]: a constant, so it is an elementwise product.
Tensor scale_heads(const Tensor& x, const std::vector<double>& factor) {
  const int64_t B = x.size(0), H = x.size(1), inner = x.size(2) * x.size(3);
  std::vector<double> f(static_cast<size_t>(x.numel()));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < inner; ++i) f[static_cast<size_t>((b * H + h) * inner + i)] = factor[static_cast<size_t>(h)];
  return mul(x, Tensor::from_vector<double>(f, x.shape()).to(x.dtype()));
}

}  // namespace

Tensor lightning_attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<double>& decay,
                              Communicator& sp_group, const LinearAttentionOptions& options) {
  auto [local, final_state] = lightning_attention(q, k, v, decay, Tensor(), options);
  const int S = sp_group.size(), r = sp_group.rank();
  if (S == 1) return local;
  // The gathered states [S, B, H, d, e]; every rank takes part, even rank 0 which needs none.
  Tensor states = all_gather_op(sp_group, final_state);
  if (r == 0) {
    // Keep rank 0's final state in the graph with a zero contribution so that its backward joins
    // the ReduceScatter like every other rank's.
    return add(local, scale(decayed_state_readout(q, reshape(slice_outer(states, 0, 1), final_state.shape()), decay), 0.0));
  }
  // Horner over the earlier ranks: S <- lambda^L S + m_j, j = 0 .. r-1.
  const int64_t L = q.size(1);
  std::vector<double> block_decay(decay.size());
  for (size_t h = 0; h < decay.size(); ++h) block_decay[h] = std::pow(decay[h], static_cast<double>(L));
  Tensor incoming = reshape(slice_outer(states, 0, 1), final_state.shape());
  for (int j = 1; j < r; ++j)
    incoming = add(scale_heads(incoming, block_decay), reshape(slice_outer(states, j, j + 1), final_state.shape()));
  return add(local, decayed_state_readout(q, incoming, decay));
}

namespace {

// [S, B, L, H, w] -> [B, S L, H, w] (rank-major pieces to one time axis), and back in the backward.
Tensor join_time(const Tensor& pieces) {
  const int64_t S = pieces.size(0), B = pieces.size(1), L = pieces.size(2), row = pieces.size(3) * pieces.size(4);
  const size_t bytes = static_cast<size_t>(L * row) * dtype_size(pieces.dtype());
  auto move = [=](const Tensor& from, Tensor& to, bool forward) {
    const char* src = static_cast<const char*>(from.raw_data());
    char* dst = static_cast<char*>(to.raw_data());
    for (int64_t s = 0; s < S; ++s)
      for (int64_t b = 0; b < B; ++b) {
        const size_t joined = static_cast<size_t>(b * S + s) * bytes, split = static_cast<size_t>(s * B + b) * bytes;
        std::memcpy(dst + (forward ? joined : split), src + (forward ? split : joined), bytes);
      }
  };
  Tensor out = Tensor::empty({B, S * L, pieces.size(3), pieces.size(4)}, pieces.dtype());
  move(pieces, out, true);
  if (autograd::needs_record({&pieces})) {
    autograd::record("join_time", {pieces}, {out}, [move, shape = pieces.shape(), dtype = pieces.dtype()](const std::vector<Tensor>& g) {
      Tensor back = Tensor::empty(shape, dtype);
      move(g[0], back, false);
      return std::vector<Tensor>{back};
    });
  }
  return out;
}

}  // namespace

Tensor attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& sp_group, AttentionOptions options) {
  EAT_CHECK(options.causal, "attention_sp: sequence parallelism splits causal attention only");
  EAT_CHECK(options.impl == AttentionImpl::tiled, "attention_sp: needs the tiled kernel");
  if (sp_group.size() == 1) return attention(q, k, v, options);
  Tensor keys = join_time(all_gather_op(sp_group, k));
  Tensor values = join_time(all_gather_op(sp_group, v));
  options.query_offset = static_cast<int64_t>(sp_group.rank()) * q.size(1);
  return attention(q, keys, values, options);
}

}  // namespace eat
