#include <map>

#include "framework/profiler.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

std::map<std::string, profiler::Entry> by_name() {
  std::map<std::string, profiler::Entry> out;
  for (const profiler::Entry& e : profiler::entries()) out[e.name] = e;
  return out;
}

// y = sum(silu(x W^T)) with its backward: three ops forward, three nodes backward. The gradient
// is cleared after each step, so no accumulation (an `add`) happens into w's gradient.
void run_step(const Tensor& x, const Tensor& w) {
  sum(silu(linear(x, w))).backward();
  w.zero_grad();
}

}  // namespace

TEST_CASE("profiler: nothing is timed while off and every op and backward node once while on") {
  Generator gen(3);
  Tensor x = randn64({6, 4}, gen, 1.0, /*grad=*/false), w = randn64({5, 4}, gen);
  profiler::reset();
  run_step(x, w);
  CHECK(profiler::entries().empty());  // off: nothing recorded

  profiler::enable(true);
  run_step(x, w);
  run_step(x, w);
  profiler::enable(false);
  auto e = by_name();
  REQUIRE(e.count("linear"));
  REQUIRE(e.count("silu"));
  REQUIRE(e.count("linear backward"));
  REQUIRE(e.count("silu backward"));
  CHECK(e["linear"].calls == 2);
  CHECK(e["silu"].calls == 2);
  CHECK(e["linear backward"].calls == 2);
  CHECK(e["silu backward"].calls == 2);
  // The kernels a backward node dispatches are inside its time, not entries of their own: only
  // the ops run forward (linear, silu, sum) and their nodes appear.
  for (const auto& [name, entry] : e) {
    CAPTURE(name);
    CHECK((name == "linear" || name == "silu" || name == "sum" || name.ends_with(" backward")));
    CHECK(entry.seconds >= 0);
  }
  // Slowest first.
  const auto all = profiler::entries();
  for (size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].seconds >= all[i].seconds);
  profiler::reset();
  CHECK(profiler::entries().empty());
}

TEST_CASE("profiler: time booked directly (communication) counts only outside timed backward nodes") {
  profiler::reset();
  profiler::record("comm grads", 0.25);
  CHECK(profiler::entries().empty());  // off
  profiler::enable(true);
  profiler::record("comm grads", 0.25);
  profiler::record("comm grads", 0.5, 0);  // a wait: time, no new operation
  {
    profiler::BackwardScope node("all_gather", Device::cpu);
    CHECK(profiler::timing_backward());
    profiler::record("comm grads", 10.0);  // inside the node's own time: not booked again
  }
  CHECK_FALSE(profiler::timing_backward());
  profiler::enable(false);
  auto e = by_name();
  REQUIRE(e.count("comm grads"));
  CHECK(e["comm grads"].seconds == 0.75);
  CHECK(e["comm grads"].calls == 1);
  REQUIRE(e.count("all_gather backward"));
  CHECK(e["all_gather backward"].calls == 1);
  CHECK(e["all_gather backward"].seconds < 10.0);
  profiler::reset();
}
