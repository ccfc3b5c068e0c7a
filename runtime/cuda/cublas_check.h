#pragma once
// Checks cuBLAS return codes; the error names the file, the line, the call and the status.
#include <cublas_v2.h>

#include "base/error.h"

#define EAT_CUBLAS_CHECK(expr)                                                                         \
  do {                                                                                                 \
    cublasStatus_t eat_status_ = (expr);                                                               \
    if (eat_status_ != CUBLAS_STATUS_SUCCESS)                                                          \
      ::eat::fail(__FILE__, ":", __LINE__, ": ", #expr, " failed: ", cublasGetStatusName(eat_status_), \
                  " (", cublasGetStatusString(eat_status_), ")");                                      \
  } while (0)
