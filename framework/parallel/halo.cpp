#include "framework/parallel/halo.h"

#include "framework/autograd.h"
#include "framework/comm/comm_stats.h"
#include "framework/parallel/time_rows.h"
#include "base/error.h"
#include "framework/ops.h"

namespace eat {

namespace {

// Hop j (1, 2, ..) moves rank r's last tokens to rank r + j: rows of global positions
// [(r + j) L - halo, ..) that lie in rank r's share. count(j) tokens, the same on every rank.
int64_t hop_count(int64_t halo, int64_t L, int64_t j) { return std::min(L, halo - (j - 1) * L); }

}  // namespace

Tensor narrow_time(const Tensor& x, int64_t begin, int64_t end) {
  EAT_CHECK(x.dim() >= 2, "narrow_time: x ", shape_str(x.shape()), " needs a time axis [B, T, ...]");
  EAT_CHECK(0 <= begin && begin <= end && end <= x.size(1), "narrow_time: rows [", begin, ", ", end, ") are outside the ",
            x.size(1), " time steps of x ", shape_str(x.shape()));
  // All rows (every windowed-attention rank past the first W tokens): x itself, no copy and no node.
  if (begin == 0 && end == x.size(1)) return x;
  Tensor out = Tensor::empty(with_time(x, end - begin), x.dtype(), x.device());
  copy_time(x, begin, out, 0, end - begin);
  if (autograd::needs_record({&x})) {
    // Only x's shape, type and device: the closure must not keep x's rows alive until backward.
    autograd::record("narrow_time", {x}, {out},
                     [begin, shape = x.shape(), dtype = x.dtype(), device = x.device(), n = end - begin](
                         const std::vector<Tensor>& g) {
      Tensor dx = Tensor::zeros(shape, dtype, device);
      if (g[0].defined()) copy_time(g[0], 0, dx, begin, n);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor concat_time(const Tensor& a, const Tensor& b) {
  EAT_CHECK(a.defined() && b.defined() && a.dim() >= 2 && a.dim() == b.dim(), "concat_time: a and b must be [B, T, ...]");
  if (a.size(1) == 0) return b;
  if (b.size(1) == 0) return a;
  Tensor out = append_time(a, b);
  if (autograd::needs_record({&a, &b})) {
    const int64_t Ta = a.size(1), Tb = b.size(1);
    autograd::record("concat_time", {a, b}, {out}, [Ta, Tb](const std::vector<Tensor>& g) {
      if (!g[0].defined()) return std::vector<Tensor>{Tensor(), Tensor()};
      return std::vector<Tensor>{narrow_time(g[0], 0, Ta), narrow_time(g[0], Ta, Ta + Tb)};
    });
  }
  return out;
}

Tensor halo_exchange(const Tensor& x, int64_t halo, Communicator& group) {
  EAT_CHECK(x.dim() >= 2 && x.size(1) >= 1, "halo_exchange: x ", shape_str(x.shape()), " must be [B, L, ...] with L >= 1");
  EAT_CHECK(halo >= 0, "halo_exchange: halo = ", halo, " must be >= 0");
  const int64_t L = x.size(1);
  const int S = group.size(), r = group.rank();
  // Hops past the group's ends move nothing anywhere.
  const int64_t hops = std::min<int64_t>((halo + L - 1) / L, S - 1);
  Tensor out = Tensor::zeros(with_time(x, halo + L), x.dtype(), x.device());
  copy_time(x, 0, out, halo, L);
  for (int64_t j = 1; j <= hops; ++j) {
    const int64_t n = hop_count(halo, L, j);
    Tensor mine = Tensor::empty(with_time(x, n), x.dtype(), x.device()),
           theirs = Tensor::zeros(with_time(x, n), x.dtype(), x.device());
    copy_time(x, L - n, mine, 0, n);
    const int dst = r + j < S ? static_cast<int>(r + j) : -1, src = r - j >= 0 ? static_cast<int>(r - j) : -1;
    group.send_recv(mine, dst, theirs, src);
    copy_time(theirs, 0, out, halo - (j - 1) * L - n, n);
  }
  if (autograd::needs_record({&x})) {
    autograd::record("halo_exchange", {x}, {out},
                     [&group, halo, hops, L, S, r, out_shape = out.shape(), shape = x.shape(), dtype = x.dtype(),
                      device = x.device(), label = current_comm_label()](const std::vector<Tensor>& g) {
                       // Every rank joins each shift, also when no gradient reached its output.
                       Tensor grad = g[0].defined() ? g[0] : Tensor::zeros(out_shape, dtype, device);
                       CommLabel scope(label);
                       Tensor dx = Tensor::empty(shape, dtype, device);
                       copy_time(grad, halo, dx, 0, L);
                       for (int64_t j = 1; j <= hops; ++j) {
                         const int64_t n = hop_count(halo, L, j);
                         Tensor back = Tensor::empty(with_time(dx, n), dtype, device),
                                mine = Tensor::zeros(with_time(dx, n), dtype, device);
                         copy_time(grad, halo - (j - 1) * L - n, back, 0, n);
                         const int dst = r - j >= 0 ? static_cast<int>(r - j) : -1, src = r + j < S ? static_cast<int>(r + j) : -1;
                         group.send_recv(back, dst, mine, src);
                         if (src >= 0) add_time(mine, dx, L - n);  // the last ranks receive nothing to add
                       }
                       return std::vector<Tensor>{dx};
                     });
  }
  return out;
}

Tensor short_conv_sp(const Tensor& x, const Tensor& weight, const Tensor& bias, Communicator& group) {
  EAT_CHECK(x.dim() == 3 && weight.dim() == 2, "short_conv_sp: x ", shape_str(x.shape()), " must be [B, L, C] and weight ",
            shape_str(weight.shape()), " [C, k]");
  const int64_t halo = weight.size(1) - 1, L = x.size(1);
  // The zeros before the sequence start are exactly the causal convolution's padding.
  return narrow_time(short_conv(halo_exchange(x, halo, group), weight, bias), halo, halo + L);
}

}  // namespace eat
