#pragma once
// What the flash attention forward and backward kernels share: the attended band on the device,
// the per-launch parameters and the tile sizes.
#include <algorithm>
#include <cstdint>

#include "base/error.h"
#include "kernels/attention_band.h"
#include "kernels/cuda/attention_flash.h"
#include "kernels/cuda/smem_tile.cuh"

namespace eat::cuda::flash {

inline constexpr int kThreads = 256;  // 8 warps per block
inline constexpr double kLog2eD = 1.4426950408889634;
inline constexpr float kLog2e = static_cast<float>(kLog2eD);  // the same bits as the literal 1.4426950408889634f

// Tile sizes: (query rows, key rows) per step of each kernel. bf16 tiles are multiples of the
// 16-row WMMA fragment; the dK/dV pass keeps two f32 accumulators of a whole key tile, so it
// takes fewer query rows at a time to fit the shared memory of an A100 (164 KiB) as well as an
// H100. f32 tiles are smaller: every element is four bytes.
template <typename D> struct Tiles {
  static constexpr int fwd_q = is_bf16_v<D> ? 64 : 32, fwd_k = is_bf16_v<D> ? 64 : 32;
  static constexpr int kv_q = 32, kv_k = is_bf16_v<D> ? 64 : 32;
  static constexpr int dq_q = is_bf16_v<D> ? 64 : 32, dq_k = is_bf16_v<D> ? 64 : 32;
};

// The tiles a kernel falls back to when its layout with Tiles does not fit smem_budget(): on
// sm_86/sm_89 (101,376 bytes) that is, in bf16, the key and query passes from head width 80 and
// the forward from 112, and in f32 the key pass from 112. At width 128 they take 73,984 / 83,200 /
// 91,392 bytes in bf16 (forward, key pass, query pass) and 91,648 for the f32 key pass. The key tile of the forward stays a multiple
// of 32 (one warp's lanes walk it), and bf16 tiles multiples of the 16-row fragment.
template <typename D> struct CompactTiles {
  static constexpr int fwd_q = 32, fwd_k = is_bf16_v<D> ? 64 : 32;
  static constexpr int kv_q = is_bf16_v<D> ? 32 : 16, kv_k = 32;
  static constexpr int dq_q = 32, dq_k = is_bf16_v<D> ? 64 : 32;
};

// Calls launch(Tiles<D>{}) when Layout<D, Tiles<D>> (a kernel's shared-memory layout for head
// widths dp, ep) fits the budget, else launch(CompactTiles<D>{}).
template <typename D, template <typename, typename> class Layout, typename Launch>
void with_fitting_tiles(int dp, int ep, Launch&& launch) {
  if (smem_fits<Layout<D, Tiles<D>>>(dp, ep))
    launch(Tiles<D>{});
  else
    launch(CompactTiles<D>{});
}

// AttentionDims's band on the device: query t (global position t + query_offset) attends to the
// sequence keys [first_key(t), last_key(t)]; sequence key s is attended by queries
// [first_query(s), last_query(s)]. k and v hold `prefix` persistent rows (seen by every query)
// before the sequence's keys.
struct Band {
  int seq, keys, query_offset, window_left;
  bool causal;
  int prefix = 0;
  __device__ int first_key(int t) const { return causal && window_left >= 0 ? max(0, t + query_offset - window_left) : 0; }
  __device__ int last_key(int t) const { return causal ? min(keys - 1, t + query_offset) : keys - 1; }
  __device__ int first_query(int s) const { return causal ? max(0, s - query_offset) : 0; }
  __device__ int last_query(int s) const {
    return causal && window_left >= 0 ? min(seq - 1, s + window_left - query_offset) : seq - 1;
  }
  __device__ bool attends(int t, int s) const { return t < seq && s < keys && s >= first_key(t) && s <= last_key(t); }
  __device__ int persistent_tiles(int Bc) const { return (prefix + Bc - 1) / Bc; }
};

// One key tile of a head: nc rows of k and v from `row`, either persistent keys (seen whole by
// every query) or the sequence keys at positions [k0, k0 + nc) (row = prefix + k0). A head's key
// tiles, Bc rows each, are the persistent ones, then the sequence's from row prefix: the band's
// tiles are those of attention without a prefix.
struct KeyTile {
  int row, k0, nc;
  bool persistent;
  // Key tile i of the head.
  __device__ static KeyTile of(const Band& band, int i, int Bc) {
    const int n_pt = band.persistent_tiles(Bc);
    if (i < n_pt) return KeyTile{i * Bc, i * Bc, min(Bc, band.prefix - i * Bc), true};
    const int k0 = (i - n_pt) * Bc;
    return KeyTile{band.prefix + k0, k0, min(Bc, band.keys - k0), false};
  }
  // Whether query t attends the tile's column c (columns from nc on are padding).
  __device__ bool attended(const Band& band, int t, int c) const {
    return persistent ? t < band.seq && c < nc : band.attends(t, k0 + c);
  }
};

// The key tiles query tile [q0, q0 + nr) visits, in order: every persistent tile, then the band's
// tiles [first, end) (each holds at least one attended pair: the band is contiguous).
struct QueryTileKeys {
  int n_pt, first, end;
  __device__ QueryTileKeys(const Band& band, int q0, int nr, int Bc)
      : n_pt(band.persistent_tiles(Bc)), first(band.first_key(q0) / Bc), end(band.last_key(q0 + nr - 1) / Bc + 1) {}
  __device__ int count() const { return n_pt + end - first; }
  __device__ KeyTile operator()(const Band& band, int j, int Bc) const {
    return KeyTile::of(band, j < n_pt ? j : j + first, Bc);
  }
};

template <typename D> struct Params {
  const D *q, *k, *v, *out, *dout;
  D *out_w, *dq, *dk, *dv;
  float* lse_w;
  const float *lse, *rowdot;
  int heads, d, e;  // head widths
  int dp, ep;       // head widths rounded up to the 16-wide fragment
  float scale, scale_log2;  // scale and scale * log2(e): exponentials are exp2 of log2-scaled scores
  Band band;

  // Row t of head (b, h) in a query-side ([B, seq, H, w]) or key-side ([B, prefix + keys, H, w])
  // tensor.
  __device__ int64_t query_row(int b, int h, int t, int w) const {
    return ((static_cast<int64_t>(b) * band.seq + t) * heads + h) * w;
  }
  __device__ int64_t key_row(int b, int h, int s, int w) const {
    return ((static_cast<int64_t>(b) * (band.prefix + band.keys) + s) * heads + h) * w;
  }
};

inline void check_dims(const AttentionDims& dims) {
  EAT_CHECK(dims.qk_dim <= kFlashMaxHeadDim && dims.v_dim <= kFlashMaxHeadDim, "attention (CUDA): head widths d = ",
            dims.qk_dim, " and e = ", dims.v_dim, " must be at most ", kFlashMaxHeadDim);
  constexpr int64_t kPositions = int64_t{1} << 30;
  EAT_CHECK(dims.seq < kPositions && dims.key_len() < kPositions && dims.query_offset >= 0 &&
                dims.query_offset < kPositions && dims.prefix >= 0 && dims.prefix < kPositions,
            "attention (CUDA): ", dims.seq, " queries at offset ", dims.query_offset, ", ", dims.key_len(),
            " keys and ", dims.prefix, " persistent keys: positions must fit in 30 bits");
}

// The window as the device's int band arithmetic takes it. A window of at least the key length
// sees every earlier key, as no window does, so it is clamped there: a wider one (up to 2^63) would
// wrap in an int, and near INT_MAX s + window_left overflows in Band::last_query. Keys and queries
// are below 2^30 (check_dims), so every sum of two positions and the clamped window fits.
inline int64_t device_window(const AttentionDims& dims) {
  return dims.window_left < 0 ? -1 : std::min(dims.window_left, dims.key_len());
}

template <typename D> Params<D> make_params(const AttentionDims& dims) {
  check_dims(dims);
  Params<D> p{};
  p.heads = static_cast<int>(dims.heads);
  p.d = static_cast<int>(dims.qk_dim);
  p.e = static_cast<int>(dims.v_dim);
  p.dp = round_up(p.d, 16);
  p.ep = round_up(p.e, 16);
  p.scale = static_cast<float>(dims.scale);
  p.scale_log2 = static_cast<float>(dims.scale * kLog2eD);
  p.band = Band{static_cast<int>(dims.seq), static_cast<int>(dims.key_len()), static_cast<int>(dims.query_offset),
                static_cast<int>(device_window(dims)), dims.causal, static_cast<int>(dims.prefix)};
  return p;
}

inline unsigned tiles_of(int64_t n, int tile) { return static_cast<unsigned>((n + tile - 1) / tile); }

// Grid (B * H, tiles); tiles on y, whose limit is 65535.
inline dim3 grid_of(const AttentionDims& dims, unsigned tiles) {
  EAT_CHECK(tiles <= 65535u, "attention (CUDA): ", tiles, " tiles per head exceed the grid limit of 65535");
  EAT_CHECK(dims.batch * dims.heads <= 0x7fffffff, "attention (CUDA): B * H = ", dims.batch * dims.heads, " is too large");
  return dim3(static_cast<unsigned>(dims.batch * dims.heads), tiles);
}

}  // namespace eat::cuda::flash
