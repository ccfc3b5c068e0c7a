#pragma once
// A reference-counted block of memory on one device. Tensors share storages for free views.
#include <cstddef>
#include <memory>

#include <string>

#include "base/allocator_stats.h"
#include "base/dtype.h"

namespace eat {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

// Copies nbytes between any two devices.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
// Fills nbytes with zero bytes on the given device.
void zero_bytes(void* dst, Device device, size_t nbytes);

bool cuda_available();  // built with CUDA and a device is present

// Bytes that new tensors on `device` can still take: the host's MemAvailable (/proc/meminfo), the
// CUDA device's free memory; -1 when unknown (no /proc/meminfo, no CUDA device).
int64_t available_memory(Device device);

// The device caching allocator: statistics (all zero in a build without CUDA), and a one-line
// summary for logs ("allocated ... (peak ...), reserved ... (peak ...), N driver allocations").
AllocatorStats device_memory_stats();
std::string device_memory_summary();
void device_empty_cache();  // gives cached device blocks back to the driver

}  // namespace eat
