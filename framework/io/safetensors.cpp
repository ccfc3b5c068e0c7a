#include "framework/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

namespace {

// One tensor's header entry, its fields checked for type and range.
struct HeaderEntry {
  std::string name;
  DType dtype;
  std::string dtype_name;
  Shape shape;
  size_t begin, end;
};

const nlohmann::ordered_json& field(const nlohmann::ordered_json& entry, const char* key, const std::string& where) {
  EAT_CHECK(entry.contains(key), where, " has no '", key, "'");
  return entry.at(key);
}

// A JSON integer in [0, 2^63): what shapes and offsets may hold.
size_t non_negative(const nlohmann::ordered_json& v, const std::string& where, const char* what) {
  EAT_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), where, ": ", what,
            " must be non-negative integers, got ", v.dump());
  uint64_t u = v.get<uint64_t>();
  EAT_CHECK(u <= static_cast<uint64_t>(INT64_MAX), where, ": ", what, " value ", u, " is too large");
  return static_cast<size_t>(u);
}

HeaderEntry parse_entry(const std::string& name, const nlohmann::ordered_json& entry, const std::string& path) {
  const std::string where = "safetensors " + path + ": tensor '" + name + "'";
  EAT_CHECK(entry.is_object(), where, " is not a JSON object");
  HeaderEntry e{name, DType::f32, "", {}, 0, 0};
  const auto& dtype = field(entry, "dtype", where);
  EAT_CHECK(dtype.is_string(), where, ": dtype must be a string, got ", dtype.dump());
  e.dtype_name = dtype.get<std::string>();
  EAT_CHECK(parse_st_dtype(e.dtype_name, e.dtype), where, " has unsupported dtype '", e.dtype_name, "'");
  const auto& shape = field(entry, "shape", where);
  EAT_CHECK(shape.is_array(), where, ": shape must be an array, got ", shape.dump());
  // The byte size, with every product checked so that a huge shape cannot wrap around.
  size_t bytes = dtype_size(e.dtype);
  for (const auto& d : shape) {
    size_t n = non_negative(d, where, "shape");
    e.shape.push_back(static_cast<int64_t>(n));
    EAT_CHECK(n == 0 || bytes <= SIZE_MAX / n, where, ": shape ", shape_str(e.shape), "... is too large");
    bytes *= n;
  }
  const auto& offsets = field(entry, "data_offsets", where);
  EAT_CHECK(offsets.is_array() && offsets.size() == 2, where, ": data_offsets must be [begin, end], got ", offsets.dump());
  e.begin = non_negative(offsets[0], where, "data_offsets");
  e.end = non_negative(offsets[1], where, "data_offsets");
  EAT_CHECK(e.begin <= e.end, where, " has data offsets [", e.begin, ", ", e.end, "] that end before they begin");
  EAT_CHECK(e.end - e.begin == bytes, where, " has ", e.end - e.begin, " bytes but shape ", shape_str(e.shape), " of ",
            e.dtype_name, " needs ", bytes);
  return e;
}

// The tensors must tile the data area in the order the header lists them (as save_safetensors
// writes them): each begins where the one before ends, with no gap, no overlap, no two sharing
// bytes, and the last ends at the end of the file. Otherwise a tensor would be read from another's
// bytes or from bytes nothing describes. The sorted pass names an overlap or a gap; what is left
// after it is tiling in another order than the header's (two tensors' offsets swapped).
void check_tiling(const std::vector<HeaderEntry>& entries, size_t data_size, const std::string& path) {
  for (const HeaderEntry& e : entries)
    EAT_CHECK(e.end <= data_size, "safetensors ", path, ": tensor '", e.name, "' has data offsets [", e.begin, ", ", e.end,
              "] outside the file's ", data_size, " data bytes (truncated?)");
  std::vector<const HeaderEntry*> sorted;
  for (const HeaderEntry& e : entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const HeaderEntry* a, const HeaderEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  size_t covered = 0;
  const HeaderEntry* previous = nullptr;
  for (const HeaderEntry* e : sorted) {
    if (e->begin < covered)
      fail("safetensors ", path, ": tensor '", e->name, "' at [", e->begin, ", ", e->end, "] overlaps tensor '",
           previous->name, "' at [", previous->begin, ", ", previous->end, "]");
    EAT_CHECK(e->begin == covered, "safetensors ", path, ": data bytes [", covered, ", ", e->begin,
              ") belong to no tensor (before tensor '", e->name, "')");
    covered = e->end;
    previous = e;
  }
  EAT_CHECK(covered == data_size, "safetensors ", path, ": data bytes [", covered, ", ", data_size,
            ") belong to no tensor (after the last one)");
  for (size_t i = 1; i < entries.size(); ++i)
    EAT_CHECK(entries[i - 1].end <= entries[i].begin, "safetensors ", path, ": tensor '", entries[i].name, "' at [",
              entries[i].begin, ", ", entries[i].end, "] is listed after tensor '", entries[i - 1].name, "' at [",
              entries[i - 1].begin, ", ", entries[i - 1].end, "] but stored before it (swapped data_offsets?)");
}

}  // namespace

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
  EAT_CHECK(header.is_object(), "safetensors ", path, ": the header is not a JSON object");
  const size_t data_begin = 8 + n, data_size = bytes.size() - data_begin;
  SafetensorsFile f;
  f.path = path;
  std::vector<HeaderEntry> entries;
  for (const auto& [name, entry] : header.items()) {
    if (name != "__metadata__") {
      entries.push_back(parse_entry(name, entry, path));
      continue;
    }
    EAT_CHECK(entry.is_object(), "safetensors ", path, ": __metadata__ must be an object of strings, got ", entry.dump());
    for (const auto& [k, v] : entry.items()) {
      EAT_CHECK(v.is_string(), "safetensors ", path, ": __metadata__ '", k, "' must be a string, got ", v.dump());
      f.metadata[k] = v.get<std::string>();
    }
  }
  check_tiling(entries, data_size, path);
  for (const HeaderEntry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    std::memcpy(t.raw_data(), bytes.data() + data_begin + e.begin, e.end - e.begin);
    f.tensors.emplace_back(e.name, t);
  }
  return f;
}

}  // namespace eat
