#pragma once
// The streams of this process's GPU: one for compute, one for communication. Every kernel is
// launched on compute_stream() unless its caller says otherwise; collectives run on comm_stream()
// and are ordered against compute with events.
#include <cuda_runtime_api.h>

namespace eat::cuda {

cudaStream_t compute_stream();
cudaStream_t comm_stream();
// Waits until everything queued on the compute stream has finished.
void sync_compute();

}  // namespace eat::cuda
