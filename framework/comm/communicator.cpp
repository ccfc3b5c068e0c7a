#include "framework/comm/communicator.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "framework/comm/comm_stats.h"
#include "base/error.h"
#ifdef EAT_WITH_MPI
#include <mpi.h>
#endif
#ifdef EAT_WITH_NCCL
#include "framework/comm/nccl_group.h"
#endif

namespace eat {

PendingGather::~PendingGather() {
  if (!finish_) return;
  try {
    finish_();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "all_gather: waiting for a gather left unwaited failed: %s\n", e.what());
  }
}

namespace {

// One process: every collective is the identity.
class SingleCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce_sum(const Tensor&) override {}
  Tensor all_gather(const Tensor& t) override {
    Shape s = t.shape();
    s.insert(s.begin(), 1);
    return t.clone().reshape(s);
  }
  std::unique_ptr<PendingGather> all_gather_async(const Tensor& t) override {
    return std::make_unique<PendingGather>(all_gather(t), nullptr);
  }
  Tensor reduce_scatter_sum(const Tensor& t) override {
    EAT_CHECK(t.dim() >= 1 && t.size(0) == 1, "reduce_scatter_sum: leading axis must be the group size 1, got ",
              shape_str(t.shape()));
    Shape s(t.shape().begin() + 1, t.shape().end());
    return t.clone().reshape(s);
  }
  void broadcast(const Tensor&, int) override {}
  void send(const Tensor&, int dst) override { fail("send to rank ", dst, " in a group of one"); }
  void recv(const Tensor&, int src) override { fail("recv from rank ", src, " in a group of one"); }
  void send_recv(const Tensor&, int dst, const Tensor&, int src) override {
    EAT_CHECK(dst == -1 && src == -1, "send_recv to rank ", dst, " from rank ", src, " in a group of one (only -1, no partner)");
  }
  bool any(bool flag) override { return flag; }
  double max(double value) override { return value; }
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int) override { return std::make_unique<SingleCommunicator>(); }
};

#ifdef EAT_WITH_MPI
MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    case DType::bf16: return MPI_UINT16_T;  // moved, never reduced
  }
  return MPI_BYTE;
}

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("MPI ", what, " failed: ", std::string(msg, static_cast<size_t>(len)));
}

// CPU tensors go through MPI, CUDA tensors through NCCL: true when t must take the NCCL path.
bool on_gpu(const char* op, const Tensor& t) {
  if (t.device() == Device::cpu) return false;
#ifdef EAT_WITH_NCCL
  return true;
#else
  fail(op, ": ", t.describe(), " is a CUDA tensor, and this eat was built without NCCL, which moves CUDA tensors "
       "between processes (build with CUDA and MPI where nccl.h and libnccl are installed)");
#endif
}

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce_sum(const Tensor& t) override {
    if (on_gpu("all_reduce_sum", t)) return gpu().all_reduce_sum(t);
    EAT_CHECK(t.dtype() != DType::bf16, "all_reduce_sum: bf16 is not reduced on the CPU");
    CommTimer timer(static_cast<int64_t>(t.nbytes()));
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), MPI_SUM, comm_),
              "Allreduce");
  }
  Tensor all_gather(const Tensor& t) override {
    if (on_gpu("all_gather", t)) return gpu().all_gather(t);
    Tensor out = gathered_like(t);
    CommTimer timer(static_cast<int64_t>(t.nbytes()));
    check_mpi(MPI_Allgather(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), out.raw_data(),
                            static_cast<int>(t.numel()), mpi_type(t.dtype()), comm_),
              "Allgather");
    return out;
  }
  std::unique_ptr<PendingGather> all_gather_async(const Tensor& t) override {
    if (on_gpu("all_gather_async", t)) return gpu().all_gather_async(t);
    Tensor out = gathered_like(t);
    MPI_Request request;
    {
      CommTimer timer(static_cast<int64_t>(t.nbytes()));
      check_mpi(MPI_Iallgather(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), out.raw_data(),
                               static_cast<int>(t.numel()), mpi_type(t.dtype()), comm_, &request),
                "Iallgather");
    }
    // The wait is booked to the label in scope at issue time, as the same operation.
    return std::make_unique<PendingGather>(out, [request, label = current_comm_label()]() mutable {
      CommLabel scope(label);
      CommTimer timer(0, false);
      check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), "Wait (Iallgather)");
    });
  }
  Tensor reduce_scatter_sum(const Tensor& t) override {
    if (on_gpu("reduce_scatter_sum", t)) return gpu().reduce_scatter_sum(t);
    EAT_CHECK(t.dim() >= 1 && t.size(0) == size_, "reduce_scatter_sum: leading axis must be the group size ", size_,
              ", got ", shape_str(t.shape()));
    Shape s(t.shape().begin() + 1, t.shape().end());
    Tensor out = Tensor::empty(s, t.dtype());
    CommTimer timer(static_cast<int64_t>(t.nbytes()));
    check_mpi(MPI_Reduce_scatter_block(t.raw_data(), out.raw_data(), static_cast<int>(out.numel()), mpi_type(t.dtype()),
                                       MPI_SUM, comm_),
              "Reduce_scatter_block");
    return out;
  }
  void broadcast(const Tensor& t, int root) override {
    if (on_gpu("broadcast", t)) return gpu().broadcast(t, root);
    CommTimer timer(rank_ == root ? static_cast<int64_t>(t.nbytes()) : 0);
    check_mpi(MPI_Bcast(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), root, comm_), "Bcast");
  }
  void send(const Tensor& t, int dst) override {
    if (on_gpu("send", t)) return gpu().send(t, dst);
    CommTimer timer(static_cast<int64_t>(t.nbytes()));
    check_mpi(MPI_Send(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), dst, 0, comm_), "Send");
  }
  void recv(const Tensor& t, int src) override {
    if (on_gpu("recv", t)) return gpu().recv(t, src);
    CommTimer timer(0);
    check_mpi(MPI_Recv(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), src, 0, comm_, MPI_STATUS_IGNORE),
              "Recv");
  }
  void send_recv(const Tensor& out, int dst, const Tensor& in, int src) override {
    EAT_CHECK(dst < 0 || src < 0 || out.device() == in.device(), "send_recv: sends ", out.describe(), " but receives ",
              in.describe(), "; both must be on one device");
    if (on_gpu("send_recv", dst >= 0 ? out : in)) return gpu().send_recv(out, dst, in, src);
    for (int peer : {dst, src})
      EAT_CHECK(peer >= -1 && peer < size_, "send_recv: rank ", peer, " is outside the group of ", size_, " (-1: no partner)");
    CommTimer timer(dst >= 0 ? static_cast<int64_t>(out.nbytes()) : 0);
    check_mpi(MPI_Sendrecv(out.raw_data(), static_cast<int>(out.numel()), mpi_type(out.dtype()), dst >= 0 ? dst : MPI_PROC_NULL,
                           0, in.raw_data(), static_cast<int>(in.numel()), mpi_type(in.dtype()),
                           src >= 0 ? src : MPI_PROC_NULL, 0, comm_, MPI_STATUS_IGNORE),
              "Sendrecv");
  }
  bool any(bool flag) override {
    int in = flag ? 1 : 0, out = 0;
    CommTimer timer(sizeof in);
    check_mpi(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, comm_), "Allreduce");
    return out != 0;
  }
  double max(double value) override {
    double out = 0;
    CommTimer timer(sizeof value);
    check_mpi(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, comm_), "Allreduce");
    return out;
  }
  void barrier() override {
    CommTimer timer(0);
    check_mpi(MPI_Barrier(comm_), "Barrier");
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub;
    check_mpi(MPI_Comm_split(comm_, color, key, &sub), "Comm_split");
    auto group = std::make_unique<MpiCommunicator>(sub, true);
#ifdef EAT_WITH_NCCL
    // Once this group talks NCCL, its sub-groups are split from it; otherwise they set up their
    // own on first use, like this one.
    if (gpu_) group->gpu_ = gpu_->split(color, key);
#endif
    return group;
  }

 private:
#ifdef EAT_WITH_NCCL
  // The group's NCCL communicator, set up by the first CUDA tensor (a collective call, so every
  // rank gets there in the same order).
  NcclGroup& gpu() {
    if (!gpu_) gpu_ = NcclGroup::create(comm_);
    return *gpu_;
  }
  std::unique_ptr<NcclGroup> gpu_;
#else
  // Never reached: on_gpu() fails first in a build without NCCL. Keeps one code path above.
  struct NoNccl {
    [[noreturn]] static void unreachable() { fail("NCCL is not built in"); }
    void all_reduce_sum(const Tensor&) { unreachable(); }
    Tensor all_gather(const Tensor&) { unreachable(); }
    std::unique_ptr<PendingGather> all_gather_async(const Tensor&) { unreachable(); }
    Tensor reduce_scatter_sum(const Tensor&) { unreachable(); }
    void broadcast(const Tensor&, int) { unreachable(); }
    void send(const Tensor&, int) { unreachable(); }
    void recv(const Tensor&, int) { unreachable(); }
    void send_recv(const Tensor&, int, const Tensor&, int) { unreachable(); }
  };
  NoNccl gpu() { return {}; }
#endif
  Tensor gathered_like(const Tensor& t) const {
    Shape s = t.shape();
    s.insert(s.begin(), size_);
    return Tensor::empty(s, t.dtype());
  }

  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1;
};

bool mpi_started() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);  // errors become eat::Error, then abort_job
#ifdef EAT_WITH_NCCL
    NcclGroup::select_device(MPI_COMM_WORLD);  // before any CUDA tensor or stream exists
#endif
  }
  return true;
}
#endif

}  // namespace

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleCommunicator>(); }

Communicator& world() {
#ifdef EAT_WITH_MPI
  static MpiCommunicator* w = (mpi_started(), new MpiCommunicator(MPI_COMM_WORLD, false));
  return *w;
#else
  static SingleCommunicator w;
  return w;
#endif
}

ParallelGroups make_parallel_groups(Communicator& w, int sp) {
  EAT_CHECK(sp >= 1 && w.size() % sp == 0, "parallel.sp = ", sp, " does not divide the world size ", w.size());
  ParallelGroups g;
  g.sp = sp;
  g.dp = w.size() / sp;
  g.sp_rank = w.rank() % sp;
  g.dp_rank = w.rank() / sp;
  g.sp_group = w.split(g.dp_rank, g.sp_rank);  // contiguous ranks
  g.dp_group = w.split(g.sp_rank, g.dp_rank);  // strided ranks
  return g;
}

void abort_job(const std::string& message, int code) {
  std::fprintf(stderr, "eat: error: %s\n", message.c_str());
  std::fflush(stderr);
#ifdef EAT_WITH_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  int size = 1;
  if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (initialized && !finalized && size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  finalize_job();
  std::exit(code);
}

void agree_on_errors(Communicator& world, const std::function<void()>& step) {
  std::string error;
  try {
    step();
  } catch (const std::exception& e) {
    error = e.what();
  }
  const bool failed = !error.empty();
  if (!world.any(failed)) return;
  const bool leader_failed = world.any(world.rank() == 0 && failed);
  if (!failed) throw AgreedError("rank " + std::to_string(world.rank()) + " stops: another rank's set-up failed", false);
  throw AgreedError(error, world.rank() == 0 || !leader_failed);
}

void finalize_job() {
#ifdef EAT_WITH_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
#endif
}

}  // namespace eat
