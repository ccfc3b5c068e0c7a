// T = 0 through decayed linear attention and its state ops on the CPU (the checks: empty_sequence.h).
#include <doctest/doctest.h>

#include "empty_sequence.h"

TEST_CASE("T = 0: lightning attention and the state ops leave the initial state, empty outputs (CPU)") {
  for (eat::DType dtype : {eat::DType::f32, eat::DType::f64}) eat::test::check_empty_sequence(eat::Device::cpu, dtype);
}
