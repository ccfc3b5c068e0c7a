#include "framework/comm/nccl_group.h"

#ifdef EAT_WITH_NCCL
#include <nccl.h>

#include <memory>

#include "framework/comm/comm_stats.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

// Checks an NCCL return code; the error names the file, the line and the call.
#define EAT_NCCL_CHECK(expr)                                                                          \
  do {                                                                                                \
    ncclResult_t eat_nccl_ = (expr);                                                                  \
    if (eat_nccl_ != ncclSuccess)                                                                     \
      ::eat::fail(__FILE__, ":", __LINE__, ": ", #expr, " failed: ", ncclGetErrorString(eat_nccl_)); \
  } while (0)

namespace eat {

namespace {

ncclDataType_t nccl_type(DType d) {
  switch (d) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
  }
  fail("NCCL: no type for ", dtype_name(d));
}

void check_cuda_tensor(const char* op, const Tensor& t) {
  EAT_CHECK(t.device() == Device::cuda, op, ": the NCCL backend moves CUDA tensors, got ", t.describe());
}

void check_mpi_call(int rc, const char* what) {
  EAT_CHECK(rc == MPI_SUCCESS, "MPI ", what, " failed while setting up NCCL (code ", rc, ")");
}

int local_rank(MPI_Comm comm) {
  MPI_Comm node;
  int rank = 0;
  check_mpi_call(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "Comm_split_type");
  MPI_Comm_rank(node, &rank);
  MPI_Comm_free(&node);
  return rank;
}

// The event that orders the two streams, created once per group and recorded again for every
// ordering: a stream wait binds to the record made just before it, so a later record cannot
// disturb a wait already queued. Shared with pending gathers, which may finish after the group.
class StreamOrder {
 public:
  StreamOrder() { EAT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~StreamOrder() { cudaEventDestroy(event_); }  // no throwing from a destructor
  StreamOrder(const StreamOrder&) = delete;
  StreamOrder& operator=(const StreamOrder&) = delete;

  // `to`'s later work runs after `from`'s earlier.
  void after(cudaStream_t to, cudaStream_t from) {
    EAT_CUDA_CHECK(cudaEventRecord(event_, from));
    EAT_CUDA_CHECK(cudaStreamWaitEvent(to, event_, 0));
  }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace

struct NcclGroup::Impl {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 1;
  std::shared_ptr<StreamOrder> order;

  // Runs `issue` on the comm stream after the compute stream's queued work; the compute stream
  // waits for it unless `then_compute_waits` is false (the caller orders it later).
  template <typename F>
  void on_comm_stream(F&& issue, bool then_compute_waits = true) {
    order->after(cuda::comm_stream(), cuda::compute_stream());
    issue(cuda::comm_stream());
    if (then_compute_waits) order->after(cuda::compute_stream(), cuda::comm_stream());
  }
};

NcclGroup::NcclGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NcclGroup::~NcclGroup() {
  if (impl_ && impl_->comm) ncclCommDestroy(impl_->comm);  // no throwing from a destructor
}

void NcclGroup::select_device(MPI_Comm world) {
  const int count = cuda::device_count();
  if (count == 0) return;
  const int local = local_rank(world);
  EAT_CHECK(local < count, "NCCL: process ", local, " of this node has no GPU of its own (the node has ", count,
            "); start at most ", count, " processes per node");
  EAT_CUDA_CHECK(cudaSetDevice(local));
}

std::unique_ptr<NcclGroup> NcclGroup::create(MPI_Comm comm) {
  auto impl = std::make_unique<Impl>();
  MPI_Comm_rank(comm, &impl->rank);
  MPI_Comm_size(comm, &impl->size);
  EAT_CHECK(cuda::device_count() > 0, "NCCL: a CUDA tensor reached a collective but this process sees no GPU");
  ncclUniqueId id;
  if (impl->rank == 0) EAT_NCCL_CHECK(ncclGetUniqueId(&id));
  check_mpi_call(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm), "Bcast");
  return from_id(std::move(impl), id);
}

std::unique_ptr<NcclGroup> NcclGroup::create_single() {
  EAT_CHECK(cuda::device_count() > 0, "NCCL: a group of one needs a GPU, and this process sees none");
  ncclUniqueId id;
  EAT_NCCL_CHECK(ncclGetUniqueId(&id));
  return from_id(std::make_unique<Impl>(), id);
}

std::unique_ptr<NcclGroup> NcclGroup::from_id(std::unique_ptr<Impl> impl, const ncclUniqueId& id) {
  impl->order = std::make_shared<StreamOrder>();  // before the communicator: a failure leaks nothing
  EAT_NCCL_CHECK(ncclCommInitRank(&impl->comm, impl->size, id, impl->rank));
  return std::unique_ptr<NcclGroup>(new NcclGroup(std::move(impl)));
}

std::unique_ptr<NcclGroup> NcclGroup::split(int color, int key) {
  auto impl = std::make_unique<Impl>();
  impl->order = std::make_shared<StreamOrder>();
  EAT_NCCL_CHECK(ncclCommSplit(impl_->comm, color, key, &impl->comm, nullptr));
  EAT_NCCL_CHECK(ncclCommUserRank(impl->comm, &impl->rank));
  EAT_NCCL_CHECK(ncclCommCount(impl->comm, &impl->size));
  return std::unique_ptr<NcclGroup>(new NcclGroup(std::move(impl)));
}

void NcclGroup::all_reduce_sum(const Tensor& t) {
  check_cuda_tensor("all_reduce_sum", t);
  CommTimer timer(static_cast<int64_t>(t.nbytes()));
  impl_->on_comm_stream([&](cudaStream_t s) {
    EAT_NCCL_CHECK(ncclAllReduce(t.raw_data(), t.raw_data(), t.numel(), nccl_type(t.dtype()), ncclSum, impl_->comm, s));
  });
}

Tensor NcclGroup::all_gather(const Tensor& t) { return all_gather_async(t)->wait(); }

std::unique_ptr<PendingGather> NcclGroup::all_gather_async(const Tensor& t) {
  check_cuda_tensor("all_gather", t);
  Shape shape = t.shape();
  shape.insert(shape.begin(), impl_->size);
  Tensor out = Tensor::empty(shape, t.dtype(), Device::cuda);
  {
    CommTimer timer(static_cast<int64_t>(t.nbytes()));
    impl_->on_comm_stream(
        [&](cudaStream_t s) {
          EAT_NCCL_CHECK(ncclAllGather(t.raw_data(), out.raw_data(), t.numel(), nccl_type(t.dtype()), impl_->comm, s));
        },
        false);
  }
  // Waiting queues the order on the device and returns at once: the host never blocks here.
  return std::make_unique<PendingGather>(
      out, [order = impl_->order] { order->after(cuda::compute_stream(), cuda::comm_stream()); });
}

Tensor NcclGroup::reduce_scatter_sum(const Tensor& t) {
  check_cuda_tensor("reduce_scatter_sum", t);
  EAT_CHECK(t.dim() >= 1 && t.size(0) == impl_->size, "reduce_scatter_sum: leading axis must be the group size ",
            impl_->size, ", got ", shape_str(t.shape()));
  Shape shape(t.shape().begin() + 1, t.shape().end());
  Tensor out = Tensor::empty(shape, t.dtype(), Device::cuda);
  CommTimer timer(static_cast<int64_t>(t.nbytes()));
  impl_->on_comm_stream([&](cudaStream_t s) {
    EAT_NCCL_CHECK(ncclReduceScatter(t.raw_data(), out.raw_data(), out.numel(), nccl_type(t.dtype()), ncclSum, impl_->comm, s));
  });
  return out;
}

void NcclGroup::broadcast(const Tensor& t, int root) {
  check_cuda_tensor("broadcast", t);
  CommTimer timer(impl_->rank == root ? static_cast<int64_t>(t.nbytes()) : 0);
  impl_->on_comm_stream([&](cudaStream_t s) {
    EAT_NCCL_CHECK(ncclBroadcast(t.raw_data(), t.raw_data(), t.numel(), nccl_type(t.dtype()), root, impl_->comm, s));
  });
}

void NcclGroup::send(const Tensor& t, int dst) { send_recv(t, dst, Tensor(), -1); }

void NcclGroup::recv(const Tensor& t, int src) { send_recv(Tensor(), -1, t, src); }

void NcclGroup::send_recv(const Tensor& out, int dst, const Tensor& in, int src) {
  if (dst >= 0) check_cuda_tensor("send", out);
  if (src >= 0) check_cuda_tensor("recv", in);
  for (int peer : {dst, src})
    EAT_CHECK(peer >= -1 && peer < impl_->size, "send_recv: rank ", peer, " is outside the group of ", impl_->size,
              " (-1: no partner)");
  CommTimer timer(dst >= 0 ? static_cast<int64_t>(out.nbytes()) : 0);
  impl_->on_comm_stream([&](cudaStream_t s) {
    // One group: NCCL posts both sides together, so a line of ranks shifting data cannot deadlock.
    EAT_NCCL_CHECK(ncclGroupStart());
    if (dst >= 0) EAT_NCCL_CHECK(ncclSend(out.raw_data(), out.numel(), nccl_type(out.dtype()), dst, impl_->comm, s));
    if (src >= 0) EAT_NCCL_CHECK(ncclRecv(in.raw_data(), in.numel(), nccl_type(in.dtype()), src, impl_->comm, s));
    EAT_NCCL_CHECK(ncclGroupEnd());
  });
}

}  // namespace eat
#endif
