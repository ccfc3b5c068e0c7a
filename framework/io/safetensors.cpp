#include "framework/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"

namespace eat {

namespace {

const char* st_dtype(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
  }
  return "?";
}

bool parse_st_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::f32}, {"F64", DType::f64}, {"BF16", DType::bf16}, {"I32", DType::i32}, {"I64", DType::i64}};
  for (const auto& [name, d] : table)
    if (s == name) {
      out = d;
      return true;
    }
  return false;
}

}  // namespace

void write_file_synced(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EAT_CHECK(fd >= 0, "cannot create ", path, " (", std::strerror(errno), ")");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      fail("writing ", path, " failed (", std::strerror(err), ")");
    }
    done += static_cast<size_t>(n);
  }
  EAT_CHECK(::fsync(fd) == 0, "fsync of ", path, " failed (", std::strerror(errno), ")");
  ::close(fd);
}

void fsync_directory(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  fail(path, ": no tensor named '", name, "'");
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> cpu;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    EAT_CHECK(name != "__metadata__" && !name.empty(), "safetensors ", path, ": bad tensor name '", name, "'");
    Tensor c = t.device() == Device::cpu ? t : t.to(Device::cpu);
    size_t bytes = static_cast<size_t>(c.numel()) * dtype_size(c.dtype());
    header[name] = {{"dtype", st_dtype(c.dtype())}, {"shape", c.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu.push_back(c);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // the format pads the header to 8 bytes
  std::string out;
  out.reserve(8 + json.size() + offset);
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += json;
  for (const Tensor& c : cpu)
    out.append(static_cast<const char*>(c.raw_data()), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  write_file_synced(path, out);
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EAT_CHECK(in, "safetensors ", path, ": cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  EAT_CHECK(bytes.size() >= 8, "safetensors ", path, ": ", bytes.size(), " bytes, too short (truncated?)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EAT_CHECK(n <= bytes.size() - 8, "safetensors ", path, ": header length ", n, " exceeds the file (truncated?)");
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes.substr(8, n));
  } catch (const std::exception& e) {
    fail("safetensors ", path, ": bad JSON header (", e.what(), ")");
  }
  const size_t data_begin = 8 + n, data_size = bytes.size() - data_begin;
  SafetensorsFile f;
  f.path = path;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, v] : entry.items()) f.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    DType dtype;
    std::string ds = entry.value("dtype", "");
    EAT_CHECK(parse_st_dtype(ds, dtype), "safetensors ", path, ": tensor '", name, "' has unsupported dtype '", ds, "'");
    Shape shape = entry.at("shape").get<Shape>();
    auto offsets = entry.at("data_offsets").get<std::vector<size_t>>();
    EAT_CHECK(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_size, "safetensors ", path,
              ": tensor '", name, "' has data offsets outside the file (truncated?)");
    Tensor t = Tensor::empty(shape, dtype);
    size_t want = static_cast<size_t>(t.numel()) * dtype_size(dtype);
    EAT_CHECK(offsets[1] - offsets[0] == want, "safetensors ", path, ": tensor '", name, "' has ", offsets[1] - offsets[0],
              " bytes but shape ", shape_str(shape), " of ", ds, " needs ", want);
    std::memcpy(t.raw_data(), bytes.data() + data_begin + offsets[0], want);
    f.tensors.emplace_back(name, t);
  }
  return f;
}

}  // namespace eat
