// T = 0 through decayed linear attention and its state ops on CUDA, held to the CPU's contract
// (the checks: empty_sequence.h): empty outputs, final state = initial state, dS0 = dfinal.
#include <doctest/doctest.h>

#include "empty_sequence.h"
#include "gpu/gpu_guard.h"

TEST_CASE("T = 0: lightning attention and the state ops leave the initial state, empty outputs (CUDA)") {
  eat::test::require_gpu();
  for (eat::DType dtype : {eat::DType::f32, eat::DType::bf16}) eat::test::check_empty_sequence(eat::Device::cuda, dtype);
}
