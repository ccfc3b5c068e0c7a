// PendingGather, the all_gather in flight: its destructor waits for an unwaited gather and must
// never throw (a destructor that throws during unwinding ends the process), while wait() still
// reports the failure to its caller.
#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "base/error.h"
#include "framework/comm/communicator.h"

using namespace eat;

namespace {

// A gather whose wait fails, as a CUDA or MPI error would make it; counts the attempts.
std::unique_ptr<PendingGather> failing_gather(int& waits) {
  return std::make_unique<PendingGather>(Tensor::zeros({2}), [&waits] {
    ++waits;
    throw Error("cudaStreamWaitEvent failed: an illegal memory access was encountered");
  });
}

}  // namespace

TEST_CASE("PendingGather: wait() throws the failure to its caller") {
  int waits = 0;
  auto gather = failing_gather(waits);
  CHECK_THROWS_WITH_AS(gather->wait(), doctest::Contains("illegal memory access"), Error);
  CHECK(waits == 1);
  gather.reset();  // waited once already: the destructor does not wait again
  CHECK(waits == 1);
}

TEST_CASE("PendingGather: an unwaited gather whose wait fails is destroyed without throwing") {
  int waits = 0;
  auto gather = failing_gather(waits);
  CHECK_NOTHROW(gather.reset());
  CHECK(waits == 1);  // it still waited, so the buffer is not freed under a running collective
}

TEST_CASE("PendingGather: destroyed during unwinding, a failing wait leaves the first exception in flight") {
  int waits = 0;
  try {
    auto gather = failing_gather(waits);
    throw std::runtime_error("the step failed");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "the step failed");
  }
  CHECK(waits == 1);
}
