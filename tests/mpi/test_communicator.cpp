// The MPI communicator under mpirun (-np 2 and -np 4): every collective against what it must
// give, and the sequence x data group layout.
#include <doctest/doctest.h>

#include "framework/comm/communicator.h"
#include "base/error.h"

using namespace eat;

namespace {

Tensor filled(const Shape& shape, double value, DType dtype = DType::f32) { return Tensor::full(shape, value, dtype); }

}  // namespace

TEST_CASE("communicator: all_reduce, all_gather, reduce_scatter, broadcast, send/recv") {
  Communicator& w = world();
  const int r = w.rank(), n = w.size();
  REQUIRE(n >= 2);
  CHECK(w.backend() == "mpi");
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor t = filled({3, 5}, r + 1, dt);
    w.all_reduce_sum(t);
    for (double v : t.to_f64_vector()) CHECK(v == n * (n + 1) / 2.0);
  }
  Tensor g = w.all_gather(Tensor::from_vector<double>({1.0 * r, 10.0 * r}, {2}));
  CHECK(g.shape() == Shape{n, 2});
  for (int i = 0; i < n; ++i) CHECK(g.to_f64_vector()[2 * i + 1] == 10.0 * i);
  // Rank r contributes r + j to slice j: slice j sums to sum_r (r + j).
  std::vector<double> parts;
  for (int j = 0; j < n; ++j) parts.insert(parts.end(), {double(r + j), double(r + j)});
  Tensor rs = w.reduce_scatter_sum(Tensor::from_vector<double>(parts, {n, 2}));
  CHECK(rs.shape() == Shape{2});
  CHECK(rs.to_f64_vector()[0] == n * (n - 1) / 2.0 + n * r);
  Tensor b = filled({4}, r == 1 ? 7.0 : 0.0, DType::f64);
  w.broadcast(b, 1);
  CHECK(b.to_f64_vector()[3] == 7.0);
  // A ring: send to the next rank, receive from the previous.
  Tensor out = filled({3}, r, DType::i64), in = Tensor::zeros({3}, DType::i64);
  if (r % 2 == 0) {
    w.send(out, (r + 1) % n);
    w.recv(in, (r + n - 1) % n);
  } else {
    w.recv(in, (r + n - 1) % n);
    w.send(out, (r + 1) % n);
  }
  CHECK(in.data<int64_t>()[0] == (r + n - 1) % n);
  CHECK(w.any(r == n - 1));
  CHECK_FALSE(w.any(false));
  CHECK(w.max(r) == n - 1);
  CHECK_THROWS_WITH_AS(w.reduce_scatter_sum(filled({n + 1, 2}, 1)), doctest::Contains("leading axis must be the group size"),
                       Error);
}

TEST_CASE("communicator: sequence-parallel groups are contiguous ranks, data-parallel groups strided") {
  Communicator& w = world();
  const int n = w.size();
  for (int sp : {1, 2, n}) {
    if (n % sp) continue;
    CAPTURE(sp);
    ParallelGroups g = make_parallel_groups(w, sp);
    CHECK(g.sp_group->size() == sp);
    CHECK(g.dp_group->size() == n / sp);
    CHECK(g.sp_rank == w.rank() % sp);
    CHECK(g.dp_rank == w.rank() / sp);
    // The SP group gathers world ranks dp_rank * sp + i; the DP group, i * sp + sp_rank.
    Tensor mine = Tensor::from_vector<int64_t>({w.rank()}, {1});
    auto spr = g.sp_group->all_gather(mine).to_f64_vector();
    for (int i = 0; i < sp; ++i) CHECK(spr[i] == g.dp_rank * sp + i);
    auto dpr = g.dp_group->all_gather(mine).to_f64_vector();
    for (int i = 0; i < n / sp; ++i) CHECK(dpr[i] == i * sp + g.sp_rank);
  }
  if (n % 3) CHECK_THROWS_WITH_AS(make_parallel_groups(w, 3), doctest::Contains("does not divide the world size"), Error);
}
