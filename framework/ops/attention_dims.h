#pragma once
// The input checks of softmax attention's ops (attention, gated_attention) and the kernel geometry
// they give: q, k [B, T, H, d] and v [B, T, H, e] of one floating dtype on one device, keys
// possibly longer than the queries (query_offset) and led by persistent keys (prefix), the mask
// options; messages name the op.
#include <cmath>

#include "framework/ops.h"
#include "kernels/attention_band.h"

namespace eat {

inline AttentionDims checked_attention_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                            const AttentionOptions& options) {
  for (const Tensor* t : {&q, &k, &v}) check_floating(op, *t);
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  check_same_device(op, q, k);
  check_same_device(op, q, v);
  check_dim(op, q, 4, "q [B, T, H, d]");
  check_dim(op, k, 4, "k [B, T, H, d]");
  check_dim(op, v, 4, "v [B, T, H, e]");
  // k and v: `prefix` persistent rows, then the sequence's keys.
  EAT_CHECK(options.prefix >= 0 && options.prefix <= k.size(1), op, ": prefix = ", options.prefix,
            " persistent keys must be >= 0 and fit the ", k.size(1), " rows of k ", shape_str(k.shape()));
  const int64_t keys = k.size(1) - options.prefix;
  // No key for a query has no softmax (persistent keys aside, the tiled kernels walk a band of at
  // least one sequence key); and the kernels read keys = 0 as "as many keys as queries".
  EAT_CHECK(keys > 0 || q.size(1) == 0, op, ": k ", shape_str(k.shape()), " holds no keys",
            options.prefix > 0 ? " after its persistent prefix" : "", " for the ", q.size(1), " queries of q ",
            shape_str(q.shape()), ": every query needs at least one key");
  const bool cross = keys != q.size(1) || options.query_offset != 0;  // queries are a slice of the keys
  EAT_CHECK(k.size(0) == q.size(0) && k.size(2) == q.size(2) && k.size(3) == q.size(3), op, ": q ",
            shape_str(q.shape()), " and k ", shape_str(k.shape()), " must have the same shape [B, T, H, d]");
  EAT_CHECK(!cross || options.impl == AttentionImpl::tiled, op, ": q ", shape_str(q.shape()), " and k ",
            shape_str(k.shape()), options.prefix > 0 ? " after its persistent prefix" : "",
            " must have the same shape [B, T, H, d] (keys longer than the queries, or a query_offset, need the tiled "
            "kernel)");
  EAT_CHECK(options.query_offset >= 0 && (!options.causal || options.query_offset + q.size(1) <= keys), op,
            ": queries at positions [", options.query_offset, ", ", options.query_offset + q.size(1),
            ") do not fit the ", keys, " keys", options.prefix > 0 ? " after the persistent prefix" : "");
  EAT_CHECK(v.size(0) == k.size(0) && v.size(1) == k.size(1) && v.size(2) == k.size(2), op, ": v ",
            shape_str(v.shape()), " must share B, T, H with k ", shape_str(k.shape()));
  EAT_CHECK(q.size(3) > 0 && v.size(3) > 0, op, ": head widths must be positive, got q ", shape_str(q.shape()),
            " and v ", shape_str(v.shape()));
  EAT_CHECK(options.window_left >= -1, op, ": window_left must be >= 0 (a sliding window) or -1 (none), got ",
            options.window_left);
  EAT_CHECK(options.causal || options.window_left == -1, op, ": window_left = ", options.window_left,
            " needs causal = true (a sliding window is only defined for causal attention)");
  AttentionDims dims;
  dims.batch = q.size(0);
  dims.seq = q.size(1);
  dims.heads = q.size(2);
  dims.qk_dim = q.size(3);
  dims.v_dim = v.size(3);
  dims.causal = options.causal;
  dims.window_left = options.window_left;
  dims.keys = keys;
  dims.prefix = options.prefix;
  dims.query_offset = options.query_offset;
  dims.scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(dims.qk_dim)));
  EAT_CHECK(std::isfinite(dims.scale), op, ": scale must be finite, got ", dims.scale);
  return dims;
}

}  // namespace eat
