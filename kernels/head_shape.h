#pragma once
// The shape of per-head sequence tensors, shared by every kernel over heads (decayed linear
// attention, its state readout and sum, the next families' mixers) and by their tests:
// q, k [B, T, H, d], v and outputs [B, T, H, e], states [B, H, d, e].
#include <cstdint>

#include "base/dtype.h"

namespace eat {

struct HeadShape {
  int64_t B, T, H, d, e;

  Shape qk() const { return {B, T, H, d}; }
  Shape v() const { return {B, T, H, e}; }
  Shape state() const { return {B, H, d, e}; }
};

}  // namespace eat
