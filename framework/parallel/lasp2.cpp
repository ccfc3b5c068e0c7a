#include "framework/parallel/lasp2.h"

#include <cmath>
#include <map>
#include <mutex>

#include "framework/autograd.h"
#include "framework/comm/comm_stats.h"
#include "framework/parallel/halo.h"
#include "framework/parallel/state_gather.h"
#include "framework/parallel/time_join.h"
#include "base/error.h"

namespace eat {

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
  if (sp_group.size() == 1) return lightning_attention(q, k, v, decay, Tensor(), options).first;
  // This rank's state comes first (a cheap O(L d e) sum), so that its gather can run while the
  // local attention, the expensive part, is computed. Both paths do the same arithmetic.
  Tensor final_state = decayed_state_sum(k, v, decay);
  StateGather gather(final_state, sp_group);
  if (!overlap) gather.wait();  // tests compare both
  Tensor local = lightning_attention(q, k, v, decay, Tensor(), options).first;
  // incoming = sum_j w_j m_j over ALL ranks' states (weight 0 for j >= r, so rank 0's is zero):
  // every rank's graph then reaches the AllGather, whose backward is a collective all must join.
  const int64_t L = q.size(1);
  Tensor incoming = gather.fold(
      [&](const Tensor& states, int rank) {
        return rank_weighted_sum(states, incoming_weights(states, decay, L, rank));
      },
      /*reads_every_rank=*/true);
  return add(local, decayed_state_readout(q, incoming, decay));
}

AttentionKeys attention_sp_keys(const Tensor& k, const Tensor& v, Communicator& sp_group, const AttentionOptions& options) {
  EAT_CHECK(options.causal, "attention_sp: sequence parallelism splits causal attention only");
  EAT_CHECK(options.impl == AttentionImpl::tiled, "attention_sp: needs the tiled kernel");
  // Every rank's k would carry the persistent rows into the gather; they join the keys afterwards.
  EAT_CHECK(options.prefix == 0, "attention_sp: k and v hold this rank's tokens only (prefix = ", options.prefix,
            "); put the persistent keys before the keys attention_sp_keys returns and call attention");
  const int64_t L = k.size(1), t0 = static_cast<int64_t>(sp_group.rank()) * L;
  if (sp_group.size() == 1) return {k, v, 0};
  if (options.window_left >= 0) {
    // The first query of this rank reaches window_left keys back; rows before the sequence start
    // (zeros from the exchange) must not become keys, so they are cut off here.
    const int64_t W = options.window_left, valid = std::min(W, t0);
    return {narrow_time(halo_exchange(k, W, sp_group), W - valid, W + L),
            narrow_time(halo_exchange(v, W, sp_group), W - valid, W + L), valid};
  }
  return {gather_time(k, sp_group), gather_time(v, sp_group), t0};
}

Tensor attention_sp(const Tensor& q, const Tensor& k, const Tensor& v, Communicator& sp_group, AttentionOptions options) {
  const AttentionKeys keys = attention_sp_keys(k, v, sp_group, options);
  options.query_offset = keys.query_offset;
  return attention(q, keys.keys, keys.values, options);
}

}  // namespace eat
