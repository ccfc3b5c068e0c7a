#include "data/token_file.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"

namespace eat::data {

namespace {

constexpr char kMagic[8] = {'E', 'A', 'T', 'T', 'O', 'K', 'S', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 64;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t bytes_per_id;
  uint64_t count;
  uint64_t raw_bytes;
  uint32_t vocab_size;
  char tokenizer[28];
};
static_assert(sizeof(Header) == kHeaderBytes, "token-file header must be 64 bytes");

}  // namespace

void write_token_file(const std::string& path, const std::vector<int32_t>& ids, int64_t vocab_size,
                      const std::string& tokenizer, int64_t raw_bytes) {
  EAT_CHECK(vocab_size > 0 && vocab_size <= INT32_MAX, "token file ", path, ": bad vocabulary size ", vocab_size);
  EAT_CHECK(tokenizer.size() < sizeof(Header::tokenizer), "token file ", path, ": tokenizer name '", tokenizer,
            "' is longer than 27 bytes");
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.bytes_per_id = vocab_size <= 65536 ? 2 : 4;
  h.count = ids.size();
  h.raw_bytes = static_cast<uint64_t>(raw_bytes);
  h.vocab_size = static_cast<uint32_t>(vocab_size);
  std::memcpy(h.tokenizer, tokenizer.data(), tokenizer.size());

  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    EAT_CHECK(out, "cannot write token file ", tmp);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    if (h.bytes_per_id == 2) {
      std::vector<uint16_t> narrow(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        EAT_CHECK(ids[i] >= 0 && ids[i] < vocab_size, "token file ", path, ": id ", ids[i], " at ", i,
                  " is outside the vocabulary [0, ", vocab_size, ")");
        narrow[i] = static_cast<uint16_t>(ids[i]);
      }
      out.write(reinterpret_cast<const char*>(narrow.data()), static_cast<std::streamsize>(narrow.size() * 2));
    } else {
      for (size_t i = 0; i < ids.size(); ++i)
        EAT_CHECK(ids[i] >= 0 && ids[i] < vocab_size, "token file ", path, ": id ", ids[i], " at ", i,
                  " is outside the vocabulary [0, ", vocab_size, ")");
      out.write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(ids.size() * 4));
    }
    out.flush();
    EAT_CHECK(out, "writing token file ", tmp, " failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

TokenFile::TokenFile(const std::string& path) : path_(path), map_("token file", path, kHeaderBytes) {
  Header h;
  std::memcpy(&h, map_.bytes(), sizeof h);
  auto refuse = [&](auto... why) { fail("token file ", path, ": ", why...); };
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    refuse("not an eat token file (bad magic; make one with `eat data tokenize` or `eat data prepare`)");
  if (h.version != kVersion) refuse("format version ", h.version, ", this eat reads version ", kVersion);
  if (h.bytes_per_id != 2 && h.bytes_per_id != 4) refuse("bad id width ", h.bytes_per_id);
  // A count whose byte size would wrap around cannot match any file's size.
  if (h.count > static_cast<uint64_t>(INT64_MAX) / h.bytes_per_id)
    refuse("header says ", h.count, " ids, more than any file can hold (corrupt header)");
  size_t expected = kHeaderBytes + h.count * h.bytes_per_id;
  if (map_.size() != expected)
    refuse("header says ", h.count, " ids (", expected, " bytes) but the file has ", map_.size(),
           " bytes (truncated or corrupt)");
  info_.count = static_cast<int64_t>(h.count);
  info_.raw_bytes = static_cast<int64_t>(h.raw_bytes);
  info_.vocab_size = h.vocab_size;
  info_.bytes_per_id = static_cast<int>(h.bytes_per_id);
  info_.tokenizer = std::string(h.tokenizer, strnlen(h.tokenizer, sizeof h.tokenizer));
  ids_ = map_.bytes() + kHeaderBytes;
}

void TokenFile::check_ids(int64_t vocab_size, const std::string& vocab_key) const {
  for (int64_t i = 0; i < info_.count; ++i) {
    const int32_t id = (*this)[i];
    if (id < 0 || id >= vocab_size)
      fail("token file ", path_, ": id ", id, " at position ", i, " is outside the vocabulary [0, ", vocab_size, ") of ",
           vocab_key);
  }
}

void TokenFile::read(int64_t begin, int64_t n, int32_t* out) const {
  EAT_CHECK(begin >= 0 && n >= 0 && begin + n <= info_.count, "token file ", path_, ": read of [", begin, ", ",
            begin + n, ") is outside its ", info_.count, " ids");
  for (int64_t i = 0; i < n; ++i) out[i] = (*this)[begin + i];
}

}  // namespace eat::data
