#pragma once
// The Titans tests' tiny model: d_model 8, 2 heads of 4, MLP memory width 6, a window of 2 keys
// back, 2 persistent pairs, MAC segments of two chunks.
#include "tiny_model.h"

namespace eat::test {

inline ModelConfig titans_config(const std::string& variant, const std::string& memory, int64_t chunk) {
  ModelConfig c = tiny_model_config("titans", DType::f64);
  c.options.set("variant", variant);
  c.options.set("memory", memory);
  c.options.set("chunk", chunk);
  c.options.set("segment", 2 * chunk);
  return c;
}

}  // namespace eat::test
