#pragma once
// The building-block layers shared by every model family.
#include "framework/nn/joined_linear.h"
#include "framework/nn/module.h"
#include "framework/ops.h"
#include "base/random.h"

namespace eat {

// A parameter in the type of the activations it meets: the parameter itself when they agree (f32
// and f64 runs), else a differentiable cast (bf16 mixed precision keeps f32 masters).
inline Tensor like_activations(const Tensor& param, const Tensor& x) {
  return param.defined() ? cast(param, x.dtype()) : param;
}

// y = x W^T (+ b); W ~ N(0, init_std^2), b = 0. With a residual, residual + y (a projection that
// writes onto the residual stream; see linear).
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen, double init_std = 0.02, DType dtype = DType::f32);
  Tensor forward(const Tensor& x, const Tensor& residual = Tensor()) const {
    return linear(x, like_activations(weight, x), like_activations(bias, x), residual);
  }
  Tensor weight, bias;
};

// Token ids -> rows of a [vocab, dim] table; N(0, init_std^2). The rows come out in the table's
// type; a mixed-precision model casts them to its compute type.
class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, Generator& gen, double init_std = 0.02, DType dtype = DType::f32);
  Tensor forward(const Tensor& ids) const { return embedding(ids, weight); }
  Tensor weight;
};

// x * rsqrt(mean(x^2) + eps) * weight; weight starts at 1.
class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps = 1e-6, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const { return rms_norm(x, like_activations(weight, x), eps); }
  Tensor weight;
  double eps;
};

// The channel mixers below take an optional residual: forward(x, r) = r + forward(x), the last
// projection writing onto it (see linear).
//
// SwiGLU channel mixer (LLaMA): down(silu(gate(x)) * up(x)), no biases. down_init_std (0: the
// same as init_std) lets a model scale the projection that writes into its residual stream.
// gate and up run as one GEMM (JoinedLinear) whose output the gate reads in halves.
class SwiGLU : public Module {
 public:
  SwiGLU(int64_t dim, int64_t hidden, Generator& gen, double init_std = 0.02, DType dtype = DType::f32,
         double down_init_std = 0);
  Tensor forward(const Tensor& x, const Tensor& residual = Tensor()) const;
  Linear &gate_proj, &up_proj, &down_proj;

 private:
  JoinedLinear gate_up_;
};

// SGLU channel mixer (TransNormerLLM Eq. 12): l3(l1(x) * l2(x)), no activation, no biases; l1 and
// l2 run as one GEMM.
class SGLU : public Module {
 public:
  SGLU(int64_t dim, int64_t hidden, Generator& gen, double init_std = 0.02, DType dtype = DType::f32);
  Tensor forward(const Tensor& x, const Tensor& residual = Tensor()) const;
  Linear &l1, &l2, &l3;

 private:
  JoinedLinear l1_l2_;
};

// GELU MLP (GPT-2, RAT): fc2(gelu(fc1(x))) with exact GELU, no biases.
class GeluMLP : public Module {
 public:
  GeluMLP(int64_t dim, int64_t hidden, Generator& gen, double init_std = 0.02, DType dtype = DType::f32,
          double fc2_init_std = 0);
  Tensor forward(const Tensor& x, const Tensor& residual = Tensor()) const {
    return fc2.forward(gelu(fc1.forward(x)), residual);
  }
  Linear &fc1, &fc2;
};

// Causal depthwise convolution over time with kernel size k (BASED k = 3, Titans k = 4);
// weight [C, k] and bias [C] start as torch's Conv1d default, U(-1/sqrt(k), 1/sqrt(k)).
class ShortConv : public Module {
 public:
  ShortConv(int64_t channels, int64_t kernel_size, bool bias, Generator& gen, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const {
    return short_conv(x, like_activations(weight, x), like_activations(bias, x));
  }
  // The call's rows continue the sequence whose last k - 1 inputs are `tail` (undefined at the
  // start: the causal zero padding); tail then holds the last k - 1 inputs (decoding, and
  // sequences run in segments). Differentiable in x and the tail.
  Tensor forward(const Tensor& x, Tensor& tail) const;
  Tensor weight, bias;
};

}  // namespace eat
