// Op table rows: Titans' linear memory (M(k) = k W).
#include "framework/op_cases/op_case.h"

namespace eat::op_cases {

std::vector<OpCase> linear_memory_cases() { return {}; }

}  // namespace eat::op_cases
