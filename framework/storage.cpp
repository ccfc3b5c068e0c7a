#include "framework/storage.h"

#include <cstdlib>
#include <cstring>

#include "framework/error.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/memory.h"
#endif

namespace eat {

namespace {
constexpr size_t kAlignment = 64;  // one cache line, and a full AVX-512 vector
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes == 0) return;
  if (device == Device::cpu) {
    size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
    data_ = std::aligned_alloc(kAlignment, rounded);
    EAT_CHECK(data_ != nullptr, "out of host memory allocating ", nbytes, " bytes");
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
    std::free(data_);
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

}  // namespace eat
