// linear and matmul: every product goes through cpu::gemm or cuda::gemm (cuBLAS). Both take
// row-major buffers with the same arguments (kernels/matmul.h), so each op is written once over
// the backend B and calls its kernels with EAT_ON(B, ...).
#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "framework/ops/linear_gradients.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"

namespace eat {

LinearShape check_linear(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_floating(op, x);
  check_floating(op, weight);
  check_dim(op, weight, 2, "weight");
  check_same_dtype(op, x, weight);
  const int64_t out = weight.size(0), in = weight.size(1);
  EAT_CHECK(x.dim() >= 1 && x.size(-1) == in, op, ": input ", shape_str(x.shape()), " does not end in ", in,
            " (weight ", shape_str(weight.shape()), ")");
  if (bias.defined()) {
    check_same_dtype(op, x, bias);
    EAT_CHECK(bias.shape() == Shape{out}, op, ": bias ", shape_str(bias.shape()), " for weight ",
              shape_str(weight.shape()), " must be [", out, "]");
  }
  return {x.numel() / std::max<int64_t>(in, 1), in, out};
}

void check_residual(const char* op, const Tensor& x, const Tensor& residual, const Shape& out_shape) {
  if (!residual.defined()) return;
  check_same_dtype(op, x, residual);
  check_same_device(op, x, residual);
  EAT_CHECK(residual.shape() == out_shape, op, ": residual ", shape_str(residual.shape()), " must have the output's shape ",
            shape_str(out_shape));
}

std::vector<Tensor> linear_gradients(const Tensor& dy, const Tensor& x, const Tensor& w, const LinearShape& s,
                                     bool need_x, bool need_w, bool need_b) {
  Tensor dx = empty_like_if(need_x, x);
  Tensor dw = empty_like_if(need_w, w);
  Tensor db = need_b ? Tensor::empty({s.out}, x.dtype(), x.device()) : Tensor();
  dispatch_backend("linear backward", x, [&]<Backend B, typename T>() {
    if (need_x) EAT_ON(B, gemm, dy.data<T>(), w.data<T>(), dx.data<T>(), s.rows, s.in, s.out, false, false, false);
    if (need_w) EAT_ON(B, gemm, dy.data<T>(), x.data<T>(), dw.data<T>(), s.out, s.in, s.rows, true, false, false);
    if (need_b) EAT_ON(B, column_sums, dy.data<T>(), db.data<T>(), s.rows, s.out);
  });
  return {dx, dw, db};
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& residual) {
  const LinearShape s = check_linear("linear", x, weight, bias);
  Shape out_shape = x.shape();
  out_shape.back() = s.out;
  check_residual("linear", x, residual, out_shape);
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch_backend("linear", x, [&]<Backend B, typename T>() {
    if (residual.defined() && !bias.defined()) {
      EAT_ON(B, gemm_onto, x.data<T>(), weight.data<T>(), residual.data<T>(), y.data<T>(), s.rows, s.out, s.in, true);
      return;
    }
    EAT_ON(B, gemm, x.data<T>(), weight.data<T>(), y.data<T>(), s.rows, s.out, s.in, false, true, false);
    if (bias.defined()) EAT_ON(B, add_row_vector, y.data<T>(), bias.data<T>(), s.rows, s.out);
    if (residual.defined()) EAT_ON(B, add_forward, residual.data<T>(), y.data<T>(), y.data<T>(), y.numel());
  });
  if (autograd::needs_record({&x, &weight, &bias, &residual})) {
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad(), need_b = bias.defined() && bias.requires_grad();
    const bool need_r = residual.defined() && residual.requires_grad();
    autograd::record("linear", {x, weight, bias, residual}, {y},
                     [x = x.detach(), w = weight.detach(), need_x, need_w, need_b, need_r, s](const std::vector<Tensor>& g) {
                       std::vector<Tensor> grads = linear_gradients(g[0], x, w, s, need_x, need_w, need_b);
                       grads.push_back(need_r ? g[0] : Tensor());  // the residual passes straight through
                       return grads;
                     });
  }
  return y;
}

namespace {

struct MatmulShape {
  int64_t batch, m, n, k;
  bool shared_b;
};

MatmulShape matmul_shape(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  EAT_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands need at least 2 dimensions, got ", shape_str(a.shape()),
            " and ", shape_str(b.shape()));
  const int64_t m = ta ? a.size(-1) : a.size(-2), ka = ta ? a.size(-2) : a.size(-1);
  const int64_t kb = tb ? b.size(-1) : b.size(-2), n = tb ? b.size(-2) : b.size(-1);
  EAT_CHECK(ka == kb, "matmul: inner dimensions differ: ", shape_str(a.shape()), (ta ? "^T" : ""), " x ",
            shape_str(b.shape()), (tb ? "^T" : ""));
  const bool shared_b = b.dim() == 2;
  if (!shared_b) {
    EAT_CHECK(b.dim() == a.dim() && std::equal(a.shape().begin(), a.shape().end() - 2, b.shape().begin()),
              "matmul: batch dimensions differ: ", shape_str(a.shape()), " vs ", shape_str(b.shape()));
  }
  return {a.numel() / std::max<int64_t>(m * ka, 1), m, n, ka, shared_b};
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_floating("matmul", a);
  check_floating("matmul", b);
  check_same_dtype("matmul", a, b);
  const MatmulShape s = matmul_shape(a, b, ta, tb);
  Shape out_shape = a.shape();
  out_shape[out_shape.size() - 2] = s.m;
  out_shape.back() = s.n;
  Tensor c = Tensor::empty(out_shape, a.dtype(), a.device());
  dispatch_backend("matmul", a, [&]<Backend B, typename T>() {
    if (s.shared_b && !ta) {  // fold the batch into the rows: one large GEMM
      EAT_ON(B, gemm, a.data<T>(), b.data<T>(), c.data<T>(), s.batch * s.m, s.n, s.k, false, tb, false);
    } else {
      EAT_ON(B, gemm_batched, s.batch, a.data<T>(), s.m * s.k, b.data<T>(), s.shared_b ? 0 : s.k * s.n, c.data<T>(),
             s.m * s.n, s.m, s.n, s.k, ta, tb, false);
    }
  });
  if (autograd::needs_record({&a, &b})) {
    bool need_a = a.requires_grad(), need_b = b.requires_grad();
    autograd::record("matmul", {a, b}, {c}, [a = a.detach(), b = b.detach(), s, ta, tb, need_a, need_b](const std::vector<Tensor>& g) {
      const Tensor& dc = g[0];
      Tensor da = empty_like_if(need_a, a);
      Tensor db = empty_like_if(need_b, b);
      dispatch_backend("matmul backward", a, [&]<Backend B, typename T>() {
        const int64_t sa = s.m * s.k, sb = s.shared_b ? 0 : s.k * s.n, sc = s.m * s.n;
        if (need_a) {
          // d op(A) = dC op(B)^T; when A is stored transposed, dA = op(B) dC^T.
          if (!ta && s.shared_b)
            EAT_ON(B, gemm, dc.data<T>(), b.data<T>(), da.data<T>(), s.batch * s.m, s.k, s.n, false, !tb, false);
          else if (!ta)
            EAT_ON(B, gemm_batched, s.batch, dc.data<T>(), sc, b.data<T>(), sb, da.data<T>(), sa, s.m, s.k, s.n, false, !tb, false);
          else
            EAT_ON(B, gemm_batched, s.batch, b.data<T>(), sb, dc.data<T>(), sc, da.data<T>(), sa, s.k, s.m, s.n, tb, true, false);
        }
        if (need_b) {
          // d op(B) = op(A)^T dC; when B is stored transposed, dB = dC^T op(A).
          if (s.shared_b && !ta) {  // sum over the batch by folding it into the inner dimension
            if (!tb)
              EAT_ON(B, gemm, a.data<T>(), dc.data<T>(), db.data<T>(), s.k, s.n, s.batch * s.m, true, false, false);
            else
              EAT_ON(B, gemm, dc.data<T>(), a.data<T>(), db.data<T>(), s.n, s.k, s.batch * s.m, true, false, false);
          } else if (s.shared_b) {  // transposed A with a shared B: accumulate batch by batch, in order
            for (int64_t i = 0; i < s.batch; ++i) {
              if (!tb)
                EAT_ON(B, gemm, a.data<T>() + i * sa, dc.data<T>() + i * sc, db.data<T>(), s.k, s.n, s.m, !ta, false, i > 0);
              else
                EAT_ON(B, gemm, dc.data<T>() + i * sc, a.data<T>() + i * sa, db.data<T>(), s.n, s.k, s.m, true, ta, i > 0);
            }
          } else if (!tb) {
            EAT_ON(B, gemm_batched, s.batch, a.data<T>(), sa, dc.data<T>(), sc, db.data<T>(), sb, s.k, s.n, s.m, !ta, false, false);
          } else {
            EAT_ON(B, gemm_batched, s.batch, dc.data<T>(), sc, a.data<T>(), sa, db.data<T>(), sb, s.n, s.k, s.m, true, ta, false);
          }
        }
      });
      return std::vector<Tensor>{da, db};
    });
  }
  return c;
}

}  // namespace eat
