// doctest under mpirun: every rank runs every case; the job fails when any rank fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "framework/comm/communicator.h"
#include "framework/float_mode.h"

int main(int argc, char** argv) {
  eat::flush_denormals_to_zero();
  doctest::Context context(argc, argv);
  if (eat::world().rank() != 0) context.setOption("out", "/dev/null");  // one report, from rank 0
  int rc = context.run();
  bool failed = eat::world().any(rc != 0);
  eat::finalize_job();
  return failed ? 1 : 0;
}
