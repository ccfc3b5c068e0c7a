#pragma once
// Integer id tensors (i32 or i64) read as int64, each checked against [0, limit) unless it equals
// `allowed` (e.g. the ignore index); an error names the op, the value, its position and the limit.
#include <cstdint>
#include <optional>
#include <vector>

#include "framework/tensor.h"

namespace eat {

std::vector<int64_t> read_ids(const char* op, const char* what, const Tensor& ids, int64_t limit,
                              std::optional<int64_t> allowed = std::nullopt);

}  // namespace eat
