#include "data/tokenizer.h"

#include "base/error.h"

namespace eat::data {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    EAT_CHECK(id >= 0 && id <= 256, "byte tokenizer: id ", id, " is outside [0, 256]");
    if (id < 256) out.push_back(static_cast<char>(id));  // end-of-text decodes to nothing
  }
  return out;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name) {
  if (name == "byte") return std::make_unique<ByteTokenizer>();
  fail("unknown tokenizer '", name, "' (known: byte)");
}

}  // namespace eat::data
