#include "data/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace eat::data {

MappedFile::MappedFile(const std::string& kind, const std::string& path, size_t header_bytes) {
  // A FIFO or a device would block open() or read as something else: only regular files.
  struct stat before {};
  EAT_CHECK(::stat(path.c_str(), &before) == 0, kind, " ", path, ": cannot open (", std::strerror(errno), ")");
  EAT_CHECK(S_ISREG(before.st_mode), kind, " ", path, ": not a regular file");
  int fd = ::open(path.c_str(), O_RDONLY);
  EAT_CHECK(fd >= 0, kind, " ", path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  ::fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < header_bytes) {
    ::close(fd);
    fail(kind, " ", path, ": ", size, " bytes is too short for the ", header_bytes, "-byte header (truncated or not a ",
         kind, ")");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  EAT_CHECK(map != MAP_FAILED, kind, " ", path, ": mmap failed (", std::strerror(errno), ")");
  map_ = map;
  size_ = size;
}

MappedFile::~MappedFile() {
  if (map_) ::munmap(map_, size_);
}

}  // namespace eat::data
