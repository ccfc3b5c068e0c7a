#pragma once
// A read-only memory map of a whole file that starts with a fixed-size header: what token files
// and mask files share. Errors name the kind of file ("token file", "mask file") and its path.
#include <cstddef>
#include <string>

namespace eat::data {

class MappedFile {
 public:
  MappedFile(const std::string& kind, const std::string& path, size_t header_bytes);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* bytes() const { return static_cast<const unsigned char*>(map_); }
  size_t size() const { return size_; }

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
};

}  // namespace eat::data
