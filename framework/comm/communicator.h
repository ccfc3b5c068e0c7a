#pragma once
// Collectives between the ranks of a job. Two backends: MPI for CPU tensors (this file's
// make_world() under mpirun), and a single-process one (size 1, every collective the identity)
// when eat runs alone or was built without MPI. NCCL for CUDA tensors plugs in behind the same
// interface. Tensors must be contiguous; collectives are blocking (except all_gather_async) and
// every rank of the group must make the same calls in the same order. Every operation is booked
// to the label in scope (comm_stats.h).
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "base/error.h"
#include "framework/tensor.h"

namespace eat {

// An all_gather in flight: the result tensor is written once wait() returns. Leaving it unwaited
// waits in the destructor, so a buffer is never freed under a running collective. The destructor
// runs during unwinding too, where a second exception would end the process: there a failed wait
// (a CUDA or MPI error) is reported on stderr instead of thrown.
class PendingGather {
 public:
  PendingGather(Tensor result, std::function<void()> finish) : result_(std::move(result)), finish_(std::move(finish)) {}
  ~PendingGather();
  PendingGather(const PendingGather&) = delete;
  PendingGather& operator=(const PendingGather&) = delete;
  Tensor wait() {
    if (finish_) std::exchange(finish_, nullptr)();
    return result_;
  }

 private:
  Tensor result_;
  std::function<void()> finish_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi"

  // In place: every rank ends with the elementwise sum over the group.
  virtual void all_reduce_sum(const Tensor& t) = 0;
  // Every rank's t (same shape on all) stacked along a new leading axis: [size, ...t.shape].
  virtual Tensor all_gather(const Tensor& t) = 0;
  // The same, started without waiting: compute while it runs, then wait(). t must stay alive and
  // unchanged until then.
  virtual std::unique_ptr<PendingGather> all_gather_async(const Tensor& t) = 0;
  // t [size, ...] summed over ranks; rank r receives slice r: [...].
  virtual Tensor reduce_scatter_sum(const Tensor& t) = 0;
  virtual void broadcast(const Tensor& t, int root) = 0;
  virtual void send(const Tensor& t, int dst) = 0;
  virtual void recv(const Tensor& t, int src) = 0;
  // Sends `out` to rank dst and receives `in` from rank src in one step, so a whole ring or line
  // of ranks can shift data without deadlock. dst or src = -1 means no partner on that side (the
  // ends of a line): nothing is sent, or `in` is left as it is.
  virtual void send_recv(const Tensor& out, int dst, const Tensor& in, int src) = 0;
  // Logical OR / maximum over the group: how ranks agree on stopping and on what they read.
  virtual bool any(bool flag) = 0;
  virtual double max(double value) = 0;
  virtual void barrier() = 0;
  // Sub-groups: ranks with the same color form one, ordered by key.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

// The job's world: MPI's when the build has MPI (initialised on first use), else one process.
Communicator& world();
// A group of one, e.g. for tests and single-rank paths.
std::unique_ptr<Communicator> make_single_communicator();

// The job's layout for sequence x data parallelism: SP groups are contiguous ranks, DP groups
// strided (rank = dp_rank * sp + sp_rank).
struct ParallelGroups {
  int sp = 1, dp = 1, sp_rank = 0, dp_rank = 0;
  std::unique_ptr<Communicator> sp_group, dp_group;
};
ParallelGroups make_parallel_groups(Communicator& world, int sp);

// Ends the MPI job (all ranks) after an error on one rank, so nobody waits in a collective.
[[noreturn]] void abort_job(const std::string& message, int code = 1);
// Shuts MPI down at a normal exit.
void finalize_job();

// An error that every rank of the job has agreed on (agree_on_errors): each rank ends through
// MPI_Finalize with exit code 1 instead of aborting the job, and only the ranks with `print` set
// report it, so the message appears once.
struct AgreedError : Error {
  AgreedError(const std::string& message, bool print) : Error(message), print(print) {}
  bool print;
};

// Runs `step` on every rank: a step each rank does alike before any collective (reading and
// checking the recipe and the data, say). When it throws on any rank, every rank
// throws an AgreedError: the failing ones with their message, printed by rank 0 (or, when rank 0
// did not fail, by each failing rank); the others with a note that another rank failed.
void agree_on_errors(Communicator& world, const std::function<void()>& step);

}  // namespace eat
