#pragma once
// Collectives as differentiable ops, the building blocks of sequence parallelism: each records
// one autograd node whose backward is the adjoint collective. Under sequence parallelism every
// rank's loss is a part of one global loss, so an adjoint sums what the other ranks' losses
// contributed. Every rank of the group must call these in the same order, and (because the
// backward is a collective too) every rank's loss must depend on the result: a rank that would
// not use it still has to, e.g. through a weight of zero. Backward collectives run in the graph's
// order: where two of them are independent and the graph differs by rank, make one depend on the
// other (as state_gather.h's gather_state_pair does), or ranks may run them in different orders.
//
// Devices: CPU tensors go over MPI, CUDA tensors over the communicator's NCCL path (a build with
// CUDA, MPI and NCCL). The backward books its traffic to the label in scope at the forward.
#include <vector>

#include "framework/comm/communicator.h"
#include "framework/tensor.h"

namespace eat {

// AllGather: [..] on every rank -> [size, ..]; the backward sums the gradient over ranks and
// hands each rank its slice (ReduceScatter).
Tensor all_gather_op(Communicator& group, const Tensor& x);

// Makes `out`, already gathered from x (e.g. by an all_gather_async started earlier), the
// differentiable AllGather of x: records all_gather_op's backward. Nothing is recorded when x
// needs no gradient.
void record_all_gather(Communicator& group, const Tensor& x, const Tensor& out);

// AllReduce-sum: every rank gets sum_r x_r (x is not modified). Backward: the gradient of x_r is
// the sum of every rank's output gradient (another AllReduce), e.g. for an auxiliary loss that
// needs statistics of the whole group (MoH's load balance).
Tensor all_reduce_sum_op(Communicator& group, const Tensor& x);

// Ring pass along the group (a line: the last rank sends nothing on): rank r sends x to rank
// r + 1 and returns what rank r - 1 sent, rank 0 zeros. For a state carried across ranks in
// series (Titans' deep memory). Backward: the gradient of the received state goes back to
// rank r - 1 and becomes its x's gradient (the last rank's x gets zeros).
Tensor ring_pass(Communicator& group, const Tensor& x);

// A state carried along the line of ranks in series, where rank r starts from what rank r - 1
// ended with (Titans' memory; spec titans.md 6.1). Call chain_receive before the local work and
// chain_send after it, on every rank, in the same order.
// chain_receive: rank r > 0 receives a tensor of `shape` (empty: anchor's) from rank r - 1 (rank
// 0: zeros); the backward sends its gradient back to rank r - 1. `anchor` (a tensor that needs a
// gradient, e.g. a learned start or the layer's input) gives the dtype and device and ties the
// node into the graph; it gets no gradient from here.
Tensor chain_receive(Communicator& group, const Tensor& anchor, const Shape& shape = {});
// chain_send: sends `states` in order to rank r + 1 (the last rank sends nothing) and returns
// `carrier`'s values as a new tensor whose backward receives the states' gradients from rank
// r + 1, last state first (the order in which rank r + 1's chain_receives, each tied behind the
// one before, send them back; the last rank: zeros), and passes carrier's gradient through. Pass
// as carrier a tensor the loss depends on (the layer's output), so that the backward runs.
Tensor chain_send(Communicator& group, const std::vector<Tensor>& states, const Tensor& carrier);

}  // namespace eat
