// Op table rows: moh_gates (MoH's router).
#include "framework/op_cases/op_case.h"

namespace eat::op_cases {

std::vector<OpCase> moh_gates_cases() { return {}; }

}  // namespace eat::op_cases
