// Op table rows: chunk_scan (RAT).
#include "framework/op_cases/op_case.h"

namespace eat::op_cases {

std::vector<OpCase> chunk_scan_cases() { return {}; }

}  // namespace eat::op_cases
