#include "framework/op_cases/op_case.h"

#include <set>

#include "base/error.h"

namespace eat::op_cases {

const std::vector<OpCase>& all() {
  static const std::vector<OpCase> table = [] {
    std::vector<OpCase> rows;
    for (auto family : {pointwise_cases, norm_cases, product_cases, sequence_cases, attention_cases, lightning_cases,
                        taylor_cases, chunk_scan_cases, summary_attention_cases,
                        moh_gates_cases, gated_attention_cases, linear_memory_cases, mlp_memory_cases, join_cases})
      for (OpCase& row : family()) rows.push_back(std::move(row));
    std::set<std::string> names;
    for (const OpCase& row : rows) EAT_CHECK(names.insert(row.name).second, "op table: two rows are named \"", row.name, "\"");
    return rows;
  }();
  return table;
}

const OpCase& find(const std::string& name) {
  std::string names;
  for (const OpCase& row : all()) {
    if (row.name == name) return row;
    if (!names.empty()) names += ", ";
    names += row.name;
  }
  fail("op table: no op named \"", name, "\"; the ops are: ", names);
}

std::vector<Tensor> draw(const Sizes& sizes, Generator& gen, DType dtype) {
  std::vector<Tensor> inputs;
  for (const Input& in : sizes)
    inputs.push_back(in.positive ? Tensor::uniform(in.shape, gen, 0.5, 1.5, dtype)
                                 : Tensor::randn(in.shape, gen, in.stddev, dtype));
  return inputs;
}

std::vector<Shape> shapes_of(const std::vector<Tensor>& inputs) {
  std::vector<Shape> shapes;
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  return shapes;
}

std::vector<Shape> shapes_of(const Sizes& sizes) {
  std::vector<Shape> shapes;
  for (const Input& in : sizes) shapes.push_back(in.shape);
  return shapes;
}

std::string describe(const Sizes& sizes) {
  std::string s;
  for (const Input& in : sizes) {
    if (!s.empty()) s += ' ';
    s += shape_str(in.shape);
  }
  return s;
}

Tensor fixed_ids(const Shape& shape, int64_t vocab, int64_t ignore_every, int64_t ignored) {
  Generator gen(1234);
  std::vector<int64_t> ids(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(vocab));
    ids[i] = ignore_every > 0 && static_cast<int64_t>(i) % ignore_every == ignore_every - 1 ? ignored : id;
  }
  return Tensor::from_vector<int64_t>(ids, shape);
}

}  // namespace eat::op_cases
