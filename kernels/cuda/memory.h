#pragma once
// Device memory and copies. Every CUDA call is checked; the error names the file and line.
#include <cstddef>

namespace eat::cuda {

int device_count();  // 0 when no driver or no GPU: never throws
void* device_alloc(size_t nbytes);
void device_free(void* p);
void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t nbytes);
void zero(void* dst, size_t nbytes);
void synchronize();

}  // namespace eat::cuda
