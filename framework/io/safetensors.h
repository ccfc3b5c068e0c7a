#pragma once
// safetensors files (https://github.com/huggingface/safetensors format): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then
// the raw tensor bytes. Any safetensors reader can load what eat writes.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace eat {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;

  // The tensor with this name; an error naming the file and the name when absent.
  const Tensor& at(const std::string& name) const;
  std::string path;
};

// Writes CPU tensors (copied from CUDA when needed) and string metadata to path, then fsyncs it.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Reads and validates a whole file; an error names the file and the tensor for: a truncated file,
// a header that is not a JSON object, a field of the wrong type, an unknown dtype, a size that is
// not shape x dtype, data offsets outside the file, overlapping, leaving bytes to no tensor or in
// another order than the header lists the tensors, and metadata that is not strings.
SafetensorsFile load_safetensors(const std::string& path);

// Writes data to path and fsyncs it; used for every file of a checkpoint.
void write_file_synced(const std::string& path, const std::string& data);
void fsync_directory(const std::string& path);

}  // namespace eat
