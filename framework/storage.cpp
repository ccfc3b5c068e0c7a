#include "framework/storage.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "base/error.h"
#include "framework/host_allocator.h"
#ifdef EAT_WITH_CUDA
#include "runtime/cuda/memory.h"
#endif

namespace eat {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes == 0) return;
  if (device == Device::cpu) {
    data_ = host_alloc(nbytes);
  } else {
#ifdef EAT_WITH_CUDA
    data_ = cuda::device_alloc(nbytes);
#else
    fail("cannot allocate a cuda tensor: this eat was built without CUDA (-DEAT_CUDA=OFF or no nvcc)");
#endif
  }
}

Storage::~Storage() {
  if (!data_) return;
  if (device_ == Device::cpu) {
    host_free(data_, nbytes_);
  } else {
#ifdef EAT_WITH_CUDA
    cuda::device_free(data_);
#endif
  }
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device == Device::cpu && src_device == Device::cpu) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef EAT_WITH_CUDA
  cuda::copy(dst, dst_device == Device::cuda, src, src_device == Device::cuda, nbytes);
#else
  fail("cannot copy to or from a cuda tensor: this eat was built without CUDA");
#endif
}

void zero_bytes(void* dst, Device device, size_t nbytes) {
  if (nbytes == 0) return;
  if (device == Device::cpu) {
    std::memset(dst, 0, nbytes);
    return;
  }
#ifdef EAT_WITH_CUDA
  cuda::zero(dst, nbytes);
#else
  fail("cannot zero a cuda tensor: this eat was built without CUDA");
#endif
}

bool cuda_available() {
#ifdef EAT_WITH_CUDA
  return cuda::device_count() > 0;
#else
  return false;
#endif
}

int64_t available_memory(Device device) {
  if (device == Device::cuda) {
#ifdef EAT_WITH_CUDA
    if (cuda_available()) return static_cast<int64_t>(cuda::available_bytes());
#endif
    return -1;
  }
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("MemAvailable:", 0) == 0) return std::strtoll(line.c_str() + 13, nullptr, 10) * 1024;  // in kB
  return -1;
}

AllocatorStats device_memory_stats() {
#ifdef EAT_WITH_CUDA
  return cuda::memory_stats();
#else
  return {};
#endif
}

std::string device_memory_summary() { return format_allocator_stats(device_memory_stats()); }

void device_empty_cache() {
#ifdef EAT_WITH_CUDA
  cuda::empty_cache();
#endif
}

}  // namespace eat
