#pragma once
// The tiny model every model test builds: d_model 8, 2 layers, 2 heads, vocabulary 11, the
// family's default options with its manifest's tiny_test_options; tests then set what they vary.
#include <doctest/doctest.h>

#include <string>

#include "framework/model.h"

namespace eat::test {

inline ModelConfig tiny_model_config(const std::string& family, DType dtype) {
  ModelConfig c;
  c.family = family;
  c.d_model = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.vocab_size = 11;
  c.init_std = 0.3;  // large enough that every path carries signal in a gradient check
  c.dtype = dtype;
  const FamilySpec* spec = find_family(family);
  REQUIRE(spec);
  for (const OptionSpec& o : spec->options) c.options.set(o.name, o.default_value);
  for (const auto& [name, value] : spec->tiny_test_options) c.options.set(name, value);
  return c;
}

}  // namespace eat::test
