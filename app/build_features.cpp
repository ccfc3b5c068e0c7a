#include <omp.h>

#include <string>

#include "app/commands.h"
#include "framework/storage.h"

namespace eat::cli {

std::string build_features() {
  std::string s = "cpu";
#ifdef EAT_WITH_CUDA
  s += cuda_available() ? ", cuda" : ", cuda (no device found)";
#endif
#ifdef EAT_WITH_MPI
  s += ", mpi";
#endif
  s += ", " + std::to_string(omp_get_max_threads()) + " threads";
  return s;
}

}  // namespace eat::cli
