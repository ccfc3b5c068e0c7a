#include "framework/parallel/collective_ops.h"

#include "framework/autograd.h"
#include "framework/comm/comm_stats.h"

namespace eat {

void record_all_gather(Communicator& group, const Tensor& x, const Tensor& out) {
  if (!autograd::needs_record({&x})) return;
  autograd::record("all_gather", {x}, {out},
                   [&group, shape = out.shape(), dtype = out.dtype(), device = out.device(),
                    label = current_comm_label()](const std::vector<Tensor>& g) {
                     // Every rank must take part even when no gradient reached its copy: it sends zeros then.
                     Tensor grad = g[0].defined() ? g[0] : Tensor::zeros(shape, dtype, device);
                     CommLabel scope(label);  // booked to the layer that gathered
                     return std::vector<Tensor>{group.reduce_scatter_sum(grad)};
                   });
}

Tensor all_gather_op(Communicator& group, const Tensor& x) {
  Tensor out = group.all_gather(x.detach());
  record_all_gather(group, x, out);
  return out;
}

Tensor all_reduce_sum_op(Communicator& group, const Tensor& x) {
  Tensor out = x.detach().clone();
  group.all_reduce_sum(out);
  if (autograd::needs_record({&x})) {
    autograd::record("all_reduce_sum", {x}, {out}, [&group, label = current_comm_label()](const std::vector<Tensor>& g) {
      Tensor grad = g[0].clone();  // reduced in place: the incoming gradient may be shared
      CommLabel scope(label);
      group.all_reduce_sum(grad);
      return std::vector<Tensor>{grad};
    });
  }
  return out;
}

namespace {
// The neighbours on the line of ranks, -1 past either end.
int next_rank(const Communicator& group) { return group.rank() + 1 < group.size() ? group.rank() + 1 : -1; }
int previous_rank(const Communicator& group) { return group.rank() > 0 ? group.rank() - 1 : -1; }
}  // namespace

Tensor ring_pass(Communicator& group, const Tensor& x) {
  Tensor received = Tensor::zeros(x.shape(), x.dtype(), x.device());
  Tensor sent = x.detach();
  group.send_recv(sent, next_rank(group), received, previous_rank(group));
  if (autograd::needs_record({&x})) {
    autograd::record("ring_pass", {x}, {received},
                     [&group, shape = x.shape(), dtype = x.dtype(), device = x.device(),
                      label = current_comm_label()](const std::vector<Tensor>& g) {
                       // The adjoint runs the line backwards; rank 0's received zeros send zeros.
                       Tensor back = g[0].defined() ? g[0] : Tensor::zeros(shape, dtype, device);
                       Tensor grad = Tensor::zeros(shape, dtype, device);
                       CommLabel scope(label);
                       group.send_recv(back, previous_rank(group), grad, next_rank(group));
                       return std::vector<Tensor>{grad};
                     });
  }
  return received;
}

Tensor chain_receive(Communicator& group, const Tensor& anchor, const Shape& shape) {
  Tensor received = Tensor::zeros(shape.empty() ? anchor.shape() : shape, anchor.dtype(), anchor.device());
  if (previous_rank(group) >= 0) group.recv(received, previous_rank(group));
  if (autograd::needs_record({&anchor})) {
    autograd::record("chain_receive", {anchor}, {received},
                     [&group, shape = received.shape(), dtype = anchor.dtype(), device = anchor.device(),
                      label = current_comm_label()](const std::vector<Tensor>& g) {
                       CommLabel scope(label);
                       if (previous_rank(group) >= 0)
                         group.send(g[0].defined() ? g[0] : Tensor::zeros(shape, dtype, device), previous_rank(group));
                       return std::vector<Tensor>{Tensor()};
                     });
  }
  return received;
}

Tensor chain_send(Communicator& group, const std::vector<Tensor>& states, const Tensor& carrier) {
  if (next_rank(group) >= 0)
    for (const Tensor& s : states) group.send(s.detach(), next_rank(group));
  Tensor out = carrier.detach().clone();
  std::vector<Tensor> inputs = states;
  inputs.push_back(carrier);
  if (autograd::needs_record(inputs)) {
    std::vector<std::pair<Shape, DType>> kinds;
    for (const Tensor& s : states) kinds.emplace_back(s.shape(), s.dtype());
    autograd::record("chain_send", inputs, {out},
                     [&group, kinds, device = carrier.device(), label = current_comm_label()](const std::vector<Tensor>& g) {
                       std::vector<Tensor> grads;
                       for (const auto& [shape, dtype] : kinds) grads.push_back(Tensor::zeros(shape, dtype, device));
                       CommLabel scope(label);
                       if (next_rank(group) >= 0)
                         for (size_t i = grads.size(); i-- > 0;) group.recv(grads[i], next_rank(group));
                       grads.push_back(g[0]);
                       return grads;
                     });
  }
  return out;
}

}  // namespace eat
