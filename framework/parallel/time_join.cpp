#include "framework/parallel/time_join.h"

#include "base/error.h"
#include "framework/autograd.h"
#include "framework/parallel/collective_ops.h"
#include "framework/parallel/time_rows.h"

namespace eat {

Tensor join_time(const Tensor& pieces) {
  EAT_CHECK(pieces.dim() >= 4, "join_time: needs [S, B, L, ...] pieces with a trailing axis, got ", shape_str(pieces.shape()));
  const int64_t S = pieces.size(0), B = pieces.size(1), L = pieces.size(2), row = pieces.numel() / (S * B * L);
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
  Shape joined(pieces.shape().begin() + 1, pieces.shape().end());
  joined[1] = S * L;
  Tensor out = Tensor::empty(joined, pieces.dtype(), pieces.device());
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

Tensor gather_time(const Tensor& x, Communicator& group) { return join_time(all_gather_op(group, x)); }

}  // namespace eat
