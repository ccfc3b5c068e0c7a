#pragma once
// Device memory and copies. Blocks come from a caching allocator over cudaMalloc (no driver call
// per tensor); copies and memsets run on compute_stream(), so they are ordered with the kernels.
// Every CUDA call is checked; the error names the file and line.
#include <cstddef>

#include "base/caching_allocator.h"

namespace eat::cuda {

int device_count();  // 0 when no driver or no GPU: never throws
void* device_alloc(size_t nbytes);
void device_free(void* p);  // never throws: called from destructors
// Queued on the compute stream; returns once the data is readable by the host when dst is host
// memory. Host memory is pageable (never pinned), so a host source may be reused on return.
void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t nbytes);
void zero(void* dst, size_t nbytes);  // queued on the compute stream
void synchronize();
// Bytes this process can still get: the driver's free memory plus the cache's idle blocks.
size_t available_bytes();

// The caching allocator's statistics and controls.
AllocatorStats memory_stats();
void empty_cache();  // gives every cached block back to the driver

}  // namespace eat::cuda
