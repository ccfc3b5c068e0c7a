// Every row of the op table (framework/op_cases/) on the CPU: the forward against the row's f64
// reference, central-difference gradients of every input in f64, f32 against f64, and the
// sequence-parallel form in a group of one against the op. Tolerances are the row's.
#include <set>

#include "framework/op_cases/op_case.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

// Inputs of one size set in f64, requiring gradients.
std::vector<Tensor> leaves(const op_cases::Sizes& sizes, Generator& gen) {
  std::vector<Tensor> in = op_cases::draw(sizes, gen);
  for (Tensor& t : in) t.requires_grad_();
  return in;
}

// A generator of its own for every row and check (seeded from the row's name by FNV-1a), so that
// adding or reordering rows never changes the inputs another row is checked on.
Generator row_generator(const std::string& name, uint64_t check) {
  uint64_t h = 1469598103934665603ull ^ check;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return Generator(h);
}

}  // namespace

TEST_CASE("op table: names are unique and every row has shapes to check") {
  std::set<std::string> names;
  for (const op_cases::OpCase& row : op_cases::all()) {
    CAPTURE(row.name);
    CHECK(names.insert(row.name).second);
    CHECK(row.call);
    CHECK(!row.small.empty());
    CHECK(!row.medium.empty());
    CHECK(&op_cases::find(row.name) == &row);
  }
  CHECK_THROWS_WITH_AS(op_cases::find("no such op"), doctest::Contains("no op named \"no such op\"; the ops are: add, mul"),
                       Error);
}

TEST_CASE("op table: every row's forward equals its f64 reference") {
  for (const op_cases::OpCase& row : op_cases::all()) {
    if (!row.reference) continue;
    Generator gen = row_generator(row.name, 1);
    for (const auto& sizes : {row.small, row.medium})
      for (const op_cases::Sizes& s : sizes) {
        CAPTURE(row.name);
        CAPTURE(op_cases::describe(s));
        std::vector<Tensor> in = op_cases::draw(s, gen);
        const Tensor out = row.call(in), want = row.reference(in);
        CHECK(out.dtype() == DType::f64);
        CHECK(rel_error(out, want) < row.tol.reference);
      }
  }
}

TEST_CASE("op table: every row's input gradients against central differences (f64)") {
  for (const op_cases::OpCase& row : op_cases::all())
    for (Generator gen = row_generator(row.name, 2); const op_cases::Sizes& s : row.small) {
      CAPTURE(row.name);
      CAPTURE(op_cases::describe(s));
      CHECK(gradcheck(row.name, row.call, leaves(s, gen)) <= 1.0);
    }
}

TEST_CASE("op table: every row in f32 against f64, outputs and input gradients") {
  for (const op_cases::OpCase& row : op_cases::all())
    for (Generator gen = row_generator(row.name, 3); const op_cases::Sizes& s : row.medium) {
      CAPTURE(row.name);
      CAPTURE(op_cases::describe(s));
      const double err = f32_vs_f64(row.call, leaves(s, gen));
      CHECK(err < row.tol.f32);
    }
}

TEST_CASE("op table: a sequence-parallel form in a group of one equals the op, forward and gradients (f64)") {
  // One rank holds the whole sequence: no halo, no gathered state; the same kernels run, in the
  // same order, so the results agree to rounding.
  auto group = make_single_communicator();
  int forms = 0;
  for (const op_cases::OpCase& row : op_cases::all()) {
    if (!row.sp) continue;
    ++forms;
    Generator gen = row_generator(row.name, 4);
    for (const op_cases::Sizes& s : row.small) {
      CAPTURE(row.name);
      CAPTURE(op_cases::describe(s));
      std::vector<Tensor> a = leaves(s, gen), b;
      for (const Tensor& t : a) b.push_back(t.detach().clone().requires_grad_());
      Tensor out = row.call(a), out_sp = row.sp(b, *group);
      CHECK(rel_error(out_sp, out) < 1e-14);
      Tensor seed = Tensor::randn(out.shape(), gen, 1.0, DType::f64);
      out.backward(seed);
      out_sp.backward(seed);
      for (size_t i = 0; i < a.size(); ++i) CHECK(rel_error(b[i].grad(), a[i].grad()) < 1e-14);
    }
  }
  CHECK(forms == 5);  // attention, attention window, short_conv (with and without bias), lightning_attention
}

TEST_CASE("op table: the FLOP formulas read the shapes of every form (transposed, shared, batched)") {
  // At A [2, 3, 4] (or its transpose) times B [2, 4, 5]: 2 batches of 3 x 4 x 5 products, three
  // times over for the forward and the two products of the backward.
  for (const char* name : {"matmul", "matmul ta", "matmul tb", "matmul ta tb", "matmul shared", "matmul ta shared",
                           "matmul tb shared", "matmul ta tb shared"}) {
    CAPTURE(name);
    const op_cases::OpCase& row = op_cases::find(name);
    CHECK(row.flops(op_cases::shapes_of(row.small[1])) == 3 * 2.0 * 2 * 3 * 4 * 5);
  }
  // linear [2, 3, 5] -> 4: six rows.
  CHECK(op_cases::find("linear").flops({{2, 3, 5}, {4, 5}, {4}}) == 3 * 2.0 * 6 * 5 * 4);
  CHECK(op_cases::find("short_conv").flops({{2, 6, 5}, {5, 3}, {5}}) == 3 * 2.0 * 2 * 6 * 5 * 3);
  CHECK(op_cases::find("decayed_state_sum").flops({{2, 7, 3, 4}, {2, 7, 3, 5}}) == 3 * 2.0 * 2 * 3 * 7 * 4 * 5);
  // f = 2: D' = 1 + 2 + 3 = 6 feature rows; e + 1 = 6 columns.
  CHECK(op_cases::find("taylor_state_sum").flops({{2, 7, 3, 2}, {2, 7, 3, 5}}) == 3 * 2.0 * 2 * 3 * 7 * 6 * 6);
  CHECK(op_cases::find("decayed_state_readout").flops({{2, 7, 3, 4}, {2, 3, 4, 5}}) == 3 * 2.0 * 2 * 3 * 7 * 4 * 5);
  // Every row with bench shapes can be timed: a positive FLOP count, or none at all.
  for (const op_cases::OpCase& row : op_cases::all())
    for (const op_cases::Sizes& s : row.bench) {
      CAPTURE(row.name);
      if (row.flops) CHECK(row.flops(op_cases::shapes_of(s)) > 0);
    }
}
