#include "framework/nn/layers.h"

#include <cmath>

#include "framework/parallel/halo.h"
#include "framework/parallel/time_rows.h"

namespace eat {

Linear::Linear(int64_t in, int64_t out, bool has_bias, Generator& gen, double init_std, DType dtype) {
  EAT_CHECK(in > 0 && out > 0, "Linear: sizes must be positive, got in=", in, " out=", out);
  weight = add_parameter("weight", Tensor::randn({out, in}, gen, init_std, dtype), ParamKind::weight);
  if (has_bias) bias = add_parameter("bias", Tensor::zeros({out}, dtype), ParamKind::bias);
}

Embedding::Embedding(int64_t vocab, int64_t dim, Generator& gen, double init_std, DType dtype) {
  EAT_CHECK(vocab > 0 && dim > 0, "Embedding: sizes must be positive, got vocab=", vocab, " dim=", dim);
  weight = add_parameter("weight", Tensor::randn({vocab, dim}, gen, init_std, dtype), ParamKind::embedding);
}

RMSNorm::RMSNorm(int64_t dim, double eps_, DType dtype) : eps(eps_) {
  weight = add_parameter("weight", Tensor::full({dim}, 1.0, dtype), ParamKind::norm);
}

SwiGLU::SwiGLU(int64_t dim, int64_t hidden, Generator& gen, double init_std, DType dtype, double down_init_std)
    : gate_proj(add_module<Linear>("gate_proj", dim, hidden, false, gen, init_std, dtype)),
      up_proj(add_module<Linear>("up_proj", dim, hidden, false, gen, init_std, dtype)),
      down_proj(add_module<Linear>("down_proj", hidden, dim, false, gen, down_init_std > 0 ? down_init_std : init_std,
                                   dtype)),
      gate_up_({&gate_proj, &up_proj}) {}

Tensor SwiGLU::forward(const Tensor& x, const Tensor& residual) const {
  return gated_mlp(x, gate_up_.joined_weight(x), like_activations(down_proj.weight, x), residual, GateActivation::silu);
}

SGLU::SGLU(int64_t dim, int64_t hidden, Generator& gen, double init_std, DType dtype)
    : l1(add_module<Linear>("l1", dim, hidden, false, gen, init_std, dtype)),
      l2(add_module<Linear>("l2", dim, hidden, false, gen, init_std, dtype)),
      l3(add_module<Linear>("l3", hidden, dim, false, gen, init_std, dtype)),
      l1_l2_({&l1, &l2}) {}

Tensor SGLU::forward(const Tensor& x, const Tensor& residual) const {
  return gated_mlp(x, l1_l2_.joined_weight(x), like_activations(l3.weight, x), residual, GateActivation::none);
}

GeluMLP::GeluMLP(int64_t dim, int64_t hidden, Generator& gen, double init_std, DType dtype, double fc2_init_std)
    : fc1(add_module<Linear>("fc1", dim, hidden, false, gen, init_std, dtype)),
      fc2(add_module<Linear>("fc2", hidden, dim, false, gen, fc2_init_std > 0 ? fc2_init_std : init_std, dtype)) {}

ShortConv::ShortConv(int64_t channels, int64_t kernel_size, bool has_bias, Generator& gen, DType dtype) {
  EAT_CHECK(channels > 0 && kernel_size > 0, "ShortConv: sizes must be positive, got channels=", channels,
            " kernel_size=", kernel_size);
  double bound = 1.0 / std::sqrt(static_cast<double>(kernel_size));
  weight = add_parameter("weight", Tensor::uniform({channels, kernel_size}, gen, -bound, bound, dtype), ParamKind::weight);
  if (has_bias) bias = add_parameter("bias", Tensor::uniform({channels}, gen, -bound, bound, dtype), ParamKind::bias);
}

Tensor ShortConv::forward(const Tensor& x, Tensor& tail) const {
  const int64_t halo = weight.size(1) - 1, T = x.size(1);
  if (halo == 0) return forward(x);
  if (!tail.defined()) tail = Tensor::zeros(with_time(x, halo), x.dtype(), x.device());
  // Differentiable joins: Titans' MAC runs its segments in sequence in training, and the gradient
  // of a segment's conv reaches the previous segment's rows through the tail.
  Tensor joined = concat_time(tail, x);
  tail = narrow_time(joined, T, T + halo);
  return narrow_time(forward(joined), halo, halo + T);
}

}  // namespace eat
