#include "framework/parallel/lasp2.h"

#include <cmath>
#include <map>
#include <mutex>

#include "framework/autograd.h"
#include "framework/comm/comm_stats.h"
#include "framework/parallel/halo.h"
#include "framework/parallel/time_rows.h"
#include "base/error.h"

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
// They depend only on the layer's decays, the shapes and the rank, so each layer's are built once
// (on the host, then sent to the device) and kept: rebuilding them meant filling and uploading a
// tensor the size of the gathered states in every layer of every step.
struct WeightsKey {
  Shape shape;
  DType dtype;
  Device device;
  int64_t L;
  int r;
  std::vector<double> decay;
  auto operator<=>(const WeightsKey&) const = default;
};

Tensor build_incoming_weights(const WeightsKey& key) {
  const int64_t B = key.shape[1], H = key.shape[2], inner = key.shape[3] * key.shape[4];
  std::vector<double> w(static_cast<size_t>(shape_numel(key.shape)), 0.0);
  for (int64_t j = 0; j < key.r; ++j)
    for (int64_t h = 0; h < H; ++h) {
      // A non-negative power of lambda <= 1: deep ranks underflow to 0, never overflow.
      const double f = std::pow(key.decay[static_cast<size_t>(h)], static_cast<double>(key.L * (key.r - 1 - j)));
      for (int64_t b = 0; b < B; ++b)
        std::fill_n(w.begin() + ((j * B + b) * H + h) * inner, inner, f);
    }
  Tensor out = Tensor::from_vector<double>(w, key.shape).to(key.dtype);
  out.move_to_(key.device);
  return out;
}

const Tensor& incoming_weights(const Tensor& states, const std::vector<double>& decay, int64_t L, int r) {
  static std::mutex mutex;
  static auto* cache = new std::map<WeightsKey, Tensor>;  // never destroyed: tensors outlive statics
  WeightsKey key{states.shape(), states.dtype(), states.device(), L, r, decay};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache->find(key);
  if (it == cache->end()) it = cache->emplace(key, build_incoming_weights(key)).first;
  return it->second;
}

}  // namespace

Tensor lightning_attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<double>& decay,
                              Communicator& sp_group, const LightningOptions& options, bool overlap) {
  const int S = sp_group.size(), r = sp_group.rank();
  if (S == 1) return lightning_attention(q, k, v, decay, Tensor(), options).first;
  // This rank's state comes first (a cheap O(L d e) sum), so that its gather can run while the
  // local attention, the expensive part, is computed. Both paths do the same arithmetic.
  Tensor final_state = decayed_state_sum(k, v, decay);
  // Without overlap (tests compare both) the gather is waited for before the local attention.
  Tensor states;  // the gathered m_j [S, B, H, d, e]
  Tensor sent = final_state.detach();
  std::unique_ptr<PendingGather> gathering = sp_group.all_gather_async(sent);
  if (!overlap) states = gathering->wait();
  Tensor local = lightning_attention(q, k, v, decay, Tensor(), options).first;
  if (overlap) states = gathering->wait();
  record_gather(sp_group, final_state, states);
  // incoming = sum_j w_j m_j over ALL ranks' states (weight 0 for j >= r, so rank 0's is zero):
  // every rank's graph then reaches the AllGather, whose backward is a collective all must join.
  // The weighted sum is one elementwise product and a [1, S] x [S, B H d e] product.
  const int64_t n = final_state.numel();
  Tensor weighted = reshape(mul(states, incoming_weights(states, decay, q.size(1), r)), {S, n});
  Tensor ones = Tensor::full({1, S}, 1.0, states.dtype());
  ones.move_to_(states.device());
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
