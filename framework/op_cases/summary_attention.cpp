// Op table rows: summary_attention (RAT).
#include "framework/op_cases/op_case.h"

namespace eat::op_cases {

std::vector<OpCase> summary_attention_cases() { return {}; }

}  // namespace eat::op_cases
