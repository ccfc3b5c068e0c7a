// Op table rows: Titans' two-layer MLP memory (M(k) = silu(k W1) W2).
#include "framework/op_cases/op_case.h"

namespace eat::op_cases {

std::vector<OpCase> mlp_memory_cases() { return {}; }

}  // namespace eat::op_cases
