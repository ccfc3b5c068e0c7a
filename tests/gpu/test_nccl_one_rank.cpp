// NCCL on a group of one GPU (NcclGroup::create_single): every collective on CUDA tensors, the
// ordering of the communication stream against the compute stream with nothing synchronising by
// hand, and gather buffers against the caching allocator's reuse. On one rank every collective is
// the identity, so each result must equal its input bit for bit; outputs start as NaN (through the
// allocator's cache), so a collective that ran too early, too late or not at all fails.
// The NCCL group is part of the MPI build (CUDA + MPI + NCCL): elsewhere this file is empty.
#ifdef EAT_WITH_NCCL
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "framework/comm/nccl_group.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"

using namespace eat;
using namespace eat::test;

namespace {

// The values of t in f64, read after everything queued on the device (exact for f32 and bf16).
std::vector<double> values(const Tensor& t) { return t.to(Device::cpu).to_f64_vector(); }

// Every element of got equals the one of want; NaN never does.
void check_same_values(const Tensor& got, const Tensor& want, const char* what) {
  const std::vector<double> g = values(got), w = values(want);
  REQUIRE_MESSAGE(g.size() == w.size(), what, ": ", g.size(), " elements, expected ", w.size());
  int64_t wrong = 0;
  for (size_t i = 0; i < g.size(); ++i) wrong += g[i] == w[i] ? 0 : 1;
  CHECK_MESSAGE(wrong == 0, what, ": ", wrong, " of ", g.size(), " elements differ (NaN: never written)");
}

Shape with_leading_one(const Shape& s) {
  Shape out = s;
  out.insert(out.begin(), 1);
  return out;
}

// A device tensor of random values exact in dtype (its host twin is `host`, in f32).
struct Sample {
  Tensor host, device;
};
Sample random_sample(const Shape& shape, DType dtype, Generator& gen) {
  Tensor host = random_rounded(shape, gen, dtype);
  return {host, to_device(host, dtype)};
}

// A product that keeps the compute stream busy for a while (~2 ms on an H100) and writes a fresh
// block: what a collective queued right after it must wait for.
struct SlowProducer {
  Tensor a, b;
  explicit SlowProducer(Generator& gen)
      : a(to_device(random_host({2048, 2048}, gen), DType::f32)), b(to_device(random_host({2048, 2048}, gen), DType::f32)) {}
  Tensor run() const {
    poison_allocator_cache({{2048, 2048}}, DType::f32);  // the product's block starts as NaN
    Tensor x = matmul(a, b);
    for (int i = 0; i < 3; ++i) x = matmul(x, b, false, true);  // longer still; the last product is x
    return x;
  }
};

}  // namespace

TEST_CASE("nccl one rank: every collective is the identity on one GPU (f32, bf16, i64)") {
  test::require_gpu();
  auto group = NcclGroup::create_single();
  Generator gen(2201);
  const Shape shape{5, 37};
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    Sample x = random_sample(shape, dtype, gen);

    group->all_reduce_sum(x.device);
    check_same_values(x.device, x.host, "all_reduce_sum (in place)");
    group->broadcast(x.device, 0);
    check_same_values(x.device, x.host, "broadcast from rank 0");

    poison_allocator_cache({with_leading_one(shape)}, dtype);
    Tensor gathered = group->all_gather(x.device);
    CHECK(gathered.shape() == with_leading_one(shape));
    check_same_values(gathered, x.host, "all_gather");

    poison_allocator_cache({with_leading_one(shape)}, dtype);
    auto pending = group->all_gather_async(x.device);
    Tensor overlapped = pending->wait();
    CHECK(overlapped.shape() == with_leading_one(shape));
    check_same_values(overlapped, x.host, "all_gather_async");

    poison_allocator_cache({shape}, dtype);
    Tensor scattered = group->reduce_scatter_sum(gathered);
    CHECK(scattered.shape() == shape);
    check_same_values(scattered, x.host, "reduce_scatter_sum");

    // To itself and from itself, in one NCCL group call.
    Tensor received = poisoned_device(shape, dtype);
    group->send_recv(x.device, 0, received, 0);
    check_same_values(received, x.host, "send_recv to and from rank 0");
    // No partner on either side: `in` is left as it is (NaN).
    Tensor untouched = poisoned_device(shape, dtype);
    group->send_recv(x.device, -1, untouched, -1);
    for (double v : values(untouched)) REQUIRE(std::isnan(v));
  }
  // Integer tensors move too (token ids, counts).
  std::vector<int64_t> ids(300);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(gen.next_u64() >> 12);  // exact in f64
  Tensor id_tensor = Tensor::from_vector<int64_t>(ids, {300}).to(Device::cuda);
  CHECK(group->all_gather(id_tensor).to(Device::cpu).to_f64_vector() == Tensor::from_vector<int64_t>(ids, {300}).to_f64_vector());
}

TEST_CASE("nccl one rank: misuse is refused with the operation and the values") {
  test::require_gpu();
  auto group = NcclGroup::create_single();
  Generator gen(2202);
  Tensor x = to_device(random_host({4, 3}, gen), DType::f32);
  CHECK_THROWS_WITH_AS(group->reduce_scatter_sum(x), doctest::Contains("leading axis must be the group size 1"), Error);
  CHECK_THROWS_WITH_AS(group->send_recv(x, 1, x, -1), doctest::Contains("rank 1 is outside the group of 1"), Error);
  Tensor on_host = random_host({4, 3}, gen);
  CHECK_THROWS_WITH_AS(group->all_reduce_sum(on_host), doctest::Contains("all_reduce_sum: the NCCL backend moves CUDA"), Error);
  CHECK_THROWS_WITH_AS(group->all_gather(on_host), doctest::Contains("all_gather: the NCCL backend moves CUDA"), Error);
}

TEST_CASE("nccl one rank: split groups (and splits of splits) run the collectives, the parent still works") {
  test::require_gpu();
  auto group = NcclGroup::create_single();
  Generator gen(2203);
  auto sub = group->split(0, 0);
  auto subsub = sub->split(5, 3);
  for (NcclGroup* g : {sub.get(), subsub.get(), group.get()}) {
    Sample x = random_sample({3, 17}, DType::bf16, gen);
    g->all_reduce_sum(x.device);
    check_same_values(x.device, x.host, "all_reduce_sum in a split group");
    Tensor gathered = g->all_gather(x.device);
    CHECK(gathered.size(0) == 1);  // the split group has one rank
    check_same_values(gathered, x.host, "all_gather in a split group");
    check_same_values(g->reduce_scatter_sum(gathered), x.host, "reduce_scatter_sum in a split group");
  }
  subsub.reset();
  sub.reset();
  Sample y = random_sample({9}, DType::f32, gen);
  check_same_values(group->all_gather(y.device), y.host, "all_gather after the splits are gone");
}

TEST_CASE("nccl one rank: collectives wait for the compute stream's writes, and its kernels for their results") {
  // A slow product writes x on the compute stream; the collective reads x on the communication
  // stream; a kernel on the compute stream reads what the collective wrote. No host sync between:
  // without the events the collective would read x's NaN block, or the kernel the gather's.
  test::require_gpu();
  auto group = NcclGroup::create_single();
  Generator gen(2204);
  SlowProducer producer(gen);
  const Shape shape{2048, 2048};
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    Tensor x = producer.run();
    poison_allocator_cache({with_leading_one(shape)}, DType::f32);
    Tensor doubled = scale(group->all_gather(x), 2.0);

    Tensor y = producer.run();
    auto pending = group->all_gather_async(y);
    Tensor busy = producer.run();  // compute overlapping the gather
    Tensor y_doubled = scale(pending->wait(), 2.0);

    Tensor z = producer.run();
    group->all_reduce_sum(z);
    Tensor z_doubled = scale(z, 2.0);

    Tensor w = producer.run();
    Tensor w_doubled = scale(group->reduce_scatter_sum(reshape(w, with_leading_one(shape))), 2.0);

    Tensor u = producer.run(), received = poisoned_device(shape, DType::f32);
    group->send_recv(u, 0, received, 0);
    Tensor u_doubled = scale(received, 2.0);

    // Exact: doubling is exact in f32, and every collective is the identity on one rank.
    check_same_values(doubled, scale(reshape(x, with_leading_one(shape)), 2.0), "all_gather after a kernel");
    check_same_values(y_doubled, scale(reshape(y, with_leading_one(shape)), 2.0), "overlapped all_gather");
    check_same_values(z_doubled, scale(z, 2.0), "all_reduce_sum after a kernel");
    check_same_values(w_doubled, scale(w, 2.0), "reduce_scatter_sum after a kernel");
    check_same_values(u_doubled, scale(u, 2.0), "send_recv after a kernel");
    for (double v : values(x)) REQUIRE(std::isfinite(v));  // the product itself is written
  }
}

TEST_CASE("nccl one rank: gather inputs and outputs survive the caching allocator's reuse") {
  // The host releases a collective's buffers as soon as it is issued; the allocator hands the same
  // blocks to the next tensors of that size, which the compute stream overwrites at once. The
  // collective's result must still be the original values: the compute stream waits for the
  // collective before any later kernel, so a reused block is never written under it.
  test::require_gpu();
  auto group = NcclGroup::create_single();
  Generator gen(2205);
  SlowProducer producer(gen);
  const Shape shape{1024, 1536};
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    for (int round = 0; round < 3; ++round) {
      CAPTURE(round);
      Tensor expected = random_rounded(shape, gen, dtype);
      Tensor gathered, scattered, overlapped;
      {
        Tensor x = to_device(expected, dtype);
        Tensor busy = producer.run();  // the collectives start only after this
        gathered = group->all_gather(x);
        scattered = group->reduce_scatter_sum(reshape(x, with_leading_one(shape)));
      }  // x and the product released here, while the collectives may still be queued
      std::vector<Tensor> reuse;
      for (int i = 0; i < 4; ++i) reuse.push_back(poisoned_device(shape, dtype));  // same size, overwritten
      check_same_values(gathered, expected, "all_gather with its input released");
      check_same_values(scattered, expected, "reduce_scatter_sum with its input released");

      // The overlapped gather: the input lives until wait() (its contract); the result is taken
      // and the pending gather dropped, then same-size blocks are overwritten.
      {
        Tensor x = to_device(expected, dtype);
        Tensor busy = producer.run();
        auto pending = group->all_gather_async(x);
        overlapped = pending->wait();
      }
      reuse.clear();
      for (int i = 0; i < 4; ++i) reuse.push_back(poisoned_device(with_leading_one(shape), dtype));
      check_same_values(overlapped, expected, "all_gather_async with its input released after wait()");

      // A pending gather dropped unwaited orders itself before its output block is reused.
      {
        Tensor x = to_device(expected, dtype);
        auto pending = group->all_gather_async(x);
      }
      Tensor after = poisoned_device(with_leading_one(shape), dtype);
      cuda::sync_compute();
      for (double v : values(after)) REQUIRE(std::isnan(v));  // the gather did not land in the reused block
    }
  }
}
#endif
