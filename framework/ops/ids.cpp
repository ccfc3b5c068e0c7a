#include "framework/ops/ids.h"

#include "base/error.h"

namespace eat {

std::vector<int64_t> read_ids(const char* op, const char* what, const Tensor& ids, int64_t limit,
                              std::optional<int64_t> allowed) {
  EAT_CHECK(ids.dtype() == DType::i32 || ids.dtype() == DType::i64, op, ": ", what, " must be i32 or i64, got ",
            ids.describe());
  EAT_CHECK(ids.device() == Device::cpu, op, ": ", what, " must be on the CPU, got ", ids.describe());
  std::vector<int64_t> out(static_cast<size_t>(ids.numel()));
  for (int64_t i = 0; i < ids.numel(); ++i) {
    int64_t v = ids.dtype() == DType::i32 ? ids.data<int32_t>()[i] : ids.data<int64_t>()[i];
    if ((v < 0 || v >= limit) && !(allowed && v == *allowed))
      fail(op, ": ", what, " ", v, " at position ", i, " is outside [0, ", limit, ")");
    out[static_cast<size_t>(i)] = v;
  }
  return out;
}

}  // namespace eat
