#pragma once
// The NCCL side of a communicator: collectives on CUDA tensors, built only with CUDA, MPI and
// NCCL (EAT_WITH_NCCL). The MPI communicator owns one per group and hands it every CUDA tensor.
// Each process drives one GPU, picked by its rank among the processes of its node. Operations
// run on the communication stream, after the work already queued on the compute stream, and the
// compute stream waits for them (CUDA events): later kernels see the results without a host sync.
#ifdef EAT_WITH_NCCL
#include <mpi.h>
#include <nccl.h>

#include <memory>

#include "framework/comm/communicator.h"

namespace eat {

class NcclGroup {
 public:
  // Makes GPU (node-local rank) current for this process: called when the MPI world starts,
  // before any CUDA tensor or stream exists. Does nothing on a machine without GPUs; fails when a
  // node runs more processes than it has GPUs.
  static void select_device(MPI_Comm world);
  // Collective over `comm`: rank 0 creates the NCCL id and broadcasts it over MPI.
  static std::unique_ptr<NcclGroup> create(MPI_Comm comm);
  // A group of this process alone, made without MPI (one rank broadcasts its id to nobody): how
  // the collectives are tested on a single GPU.
  static std::unique_ptr<NcclGroup> create_single();
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  // The same contracts as Communicator's methods of the same names, for CUDA tensors.
  void all_reduce_sum(const Tensor& t);
  Tensor all_gather(const Tensor& t);
  std::unique_ptr<PendingGather> all_gather_async(const Tensor& t);
  Tensor reduce_scatter_sum(const Tensor& t);
  void broadcast(const Tensor& t, int root);
  void send(const Tensor& t, int dst);
  void recv(const Tensor& t, int src);
  void send_recv(const Tensor& out, int dst, const Tensor& in, int src);
  // Sub-group by ncclCommSplit, collective over this group (same color -> one group, ordered by key).
  std::unique_ptr<NcclGroup> split(int color, int key);

 private:
  struct Impl;
  explicit NcclGroup(std::unique_ptr<Impl> impl);
  // The group of impl's rank and size whose ranks all hold `id`.
  static std::unique_ptr<NcclGroup> from_id(std::unique_ptr<Impl> impl, const ncclUniqueId& id);
  std::unique_ptr<Impl> impl_;
};

}  // namespace eat
#endif
