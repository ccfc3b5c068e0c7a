// Op table rows: gated_attention (MoH).
#include "framework/op_cases/op_case.h"

namespace eat::op_cases {

std::vector<OpCase> gated_attention_cases() { return {}; }

}  // namespace eat::op_cases
