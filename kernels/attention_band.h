#pragma once
// The geometry shared by every softmax attention kernel (CPU naive and tiled, CUDA flash): sizes,
// strides and which keys a query sees.
// q, k [B, T, H, d] and v [B, T, H, e] are the free reshapes of [B, T, H*d] projections, so the
// rows of one head are H*d (or H*e) elements apart; kernels read them in place through strides.
// k and v may start with `prefix` persistent rows (Titans' persistent memory, attention sinks)
// that every query sees whatever the mask; the sequence's keys follow them, and key positions
// (the band below, query_offset) count from the first row after the prefix. Kernels take the
// prefix rows as key tiles of their own, so the band of sequence keys keeps its tiles.
#include <algorithm>
#include <cstdint>

namespace eat {

struct AttentionDims {
  int64_t batch = 0, seq = 0, heads = 0;
  int64_t qk_dim = 0;  // d: head width of q and k
  int64_t v_dim = 0;   // e: head width of v and of the output
  bool causal = true;
  int64_t window_left = -1;  // >= 0 (causal only): query t sees keys [t - window_left, t]
  double scale = 1.0;
  // Keys and values may be a longer sequence than the queries (sequence parallelism gathers every
  // rank's keys): key rows (0: the same as seq), and the position of query 0 among them.
  int64_t keys = 0;
  int64_t query_offset = 0;
  int64_t prefix = 0;  // persistent key rows before the sequence's keys

  int64_t key_len() const { return keys > 0 ? keys : seq; }  // the sequence's keys
  int64_t key_rows() const { return prefix + key_len(); }    // rows of k and v

  int64_t qk_row_stride() const { return heads * qk_dim; }
  int64_t v_row_stride() const { return heads * v_dim; }
  // First element of head h of token 0 in batch b.
  int64_t qk_offset(int64_t b, int64_t h) const { return b * seq * heads * qk_dim + h * qk_dim; }
  int64_t v_offset(int64_t b, int64_t h) const { return b * seq * heads * v_dim + h * v_dim; }
  // The same for the key-side tensors k and v, which have key_rows() rows (row 0: the first
  // persistent key, or the first sequence key without a prefix).
  int64_t key_offset(int64_t b, int64_t h) const { return b * key_rows() * heads * qk_dim + h * qk_dim; }
  int64_t value_offset(int64_t b, int64_t h) const { return b * key_rows() * heads * v_dim + h * v_dim; }

  // Query t (global position t + query_offset) attends to the sequence keys [first_key(t),
  // last_key(t)] (rows prefix + first_key(t) ...): a contiguous band, never empty; and to every
  // persistent key.
  int64_t first_key(int64_t t) const {
    return causal && window_left >= 0 ? std::max<int64_t>(0, t + query_offset - window_left) : 0;
  }
  int64_t last_key(int64_t t) const { return causal ? std::min(key_len() - 1, t + query_offset) : key_len() - 1; }
  // Sequence key s is attended by queries [first_query(s), last_query(s)] (the same band seen from a key;
  // empty when first > last, e.g. keys after the last local query).
  int64_t first_query(int64_t s) const { return causal ? std::max<int64_t>(0, s - query_offset) : 0; }
  int64_t last_query(int64_t s) const {
    return causal && window_left >= 0 ? std::min(seq - 1, s + window_left - query_offset) : seq - 1;
  }
};

}  // namespace eat
