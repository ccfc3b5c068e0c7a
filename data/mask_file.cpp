#include "data/mask_file.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"

namespace eat::data {

namespace {

constexpr char kMagic[8] = {'E', 'A', 'T', 'M', 'A', 'S', 'K', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 64;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t record_len;
  uint64_t count;
  char zero[40];
};
static_assert(sizeof(Header) == kHeaderBytes, "mask-file header must be 64 bytes");

}  // namespace

std::string mask_path_for(const std::string& token_path) {
  std::filesystem::path p(token_path);
  if (p.extension() == ".tok") return p.replace_extension(".mask").string();
  return token_path + ".mask";
}

void write_mask_file(const std::string& path, const std::vector<uint8_t>& scored, int64_t record_len) {
  EAT_CHECK(record_len > 1 && record_len <= INT32_MAX, "mask file ", path, ": bad record length ", record_len);
  EAT_CHECK(scored.size() % static_cast<size_t>(record_len) == 0, "mask file ", path, ": ", scored.size(),
            " bytes are not whole records of ", record_len);
  for (size_t i = 0; i < scored.size(); ++i)
    EAT_CHECK(scored[i] <= 1, "mask file ", path, ": byte ", i, " is ", int(scored[i]), ", not 0 or 1");
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.record_len = static_cast<uint32_t>(record_len);
  h.count = scored.size();
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    EAT_CHECK(out, "cannot write mask file ", tmp);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    out.write(reinterpret_cast<const char*>(scored.data()), static_cast<std::streamsize>(scored.size()));
    out.flush();
    EAT_CHECK(out, "writing mask file ", tmp, " failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

MaskFile::MaskFile(const std::string& path, const TokenFile& tokens) : path_(path), map_("mask file", path, kHeaderBytes) {
  Header h;
  std::memcpy(&h, map_.bytes(), sizeof h);
  auto refuse = [&](auto... why) { fail("mask file ", path, ": ", why...); };
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) refuse("not an eat mask file (bad magic)");
  if (h.version != kVersion) refuse("format version ", h.version, ", this eat reads version ", kVersion);
  if (map_.size() != kHeaderBytes + h.count)
    refuse("header says ", h.count, " bytes but the file holds ", map_.size() - kHeaderBytes, " (truncated or corrupt)");
  if (static_cast<int64_t>(h.count) != tokens.size())
    refuse(h.count, " mask bytes for the ", tokens.size(), " ids of ", tokens.path(), " (they must match one to one)");
  if (h.record_len < 2 || h.count % h.record_len != 0)
    refuse("record length ", h.record_len, " does not cut its ", h.count, " bytes into whole examples");
  count_ = static_cast<int64_t>(h.count);
  record_len_ = h.record_len;
  bytes_ = map_.bytes() + kHeaderBytes;
}

std::unique_ptr<MaskFile> open_mask_beside(const TokenFile& tokens) {
  const std::string path = mask_path_for(tokens.path());
  if (!std::filesystem::exists(path)) return nullptr;
  return std::make_unique<MaskFile>(path, tokens);
}

}  // namespace eat::data
