#include "framework/tensor.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "framework/ops.h"
#include "base/random.h"
#ifdef EAT_WITH_CUDA
#include "kernels/cuda/cast.h"
#include "kernels/cuda/fill.h"
#endif

namespace eat {

namespace {

std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) EAT_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  return impl;
}

// Reads element i of a host buffer of any dtype as a double.
double load_as_double(const void* p, DType dt, int64_t i) {
  switch (dt) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f64: return static_cast<const double*>(p)[i];
    case DType::bf16: return static_cast<float>(static_cast<const bf16*>(p)[i]);
    case DType::i32: return static_cast<const int32_t*>(p)[i];
    case DType::i64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
  }
  return 0;
}

void store_from_double(void* p, DType dt, int64_t i, double v) {
  switch (dt) {
    case DType::f32: static_cast<float*>(p)[i] = static_cast<float>(v); return;
    case DType::f64: static_cast<double*>(p)[i] = v; return;
    case DType::bf16: static_cast<bf16*>(p)[i] = bf16(static_cast<float>(v)); return;
    case DType::i32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); return;
    case DType::i64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); return;
  }
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) { return Tensor(make_impl(shape, dtype, device)); }

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  zero_bytes(t.raw_data(), device, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, double stddev, DType dtype) {
  Tensor t = empty(shape, dtype);
  void* p = t.raw_data();
  for (int64_t i = 0; i < t.numel(); ++i) store_from_double(p, dtype, i, gen.normal() * stddev);
  return t;
}

Tensor Tensor::uniform(const Shape& shape, Generator& gen, double lo, double hi, DType dtype) {
  Tensor t = empty(shape, dtype);
  void* p = t.raw_data();
  for (int64_t i = 0; i < t.numel(); ++i) store_from_double(p, dtype, i, lo + (hi - lo) * gen.uniform());
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  EAT_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
            " values for shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int32_t>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int64_t>&, const Shape&);

int64_t Tensor::size(int64_t axis) const {
  int64_t n = dim();
  int64_t a = axis < 0 ? axis + n : axis;
  EAT_CHECK(a >= 0 && a < n, "axis ", axis, " out of range for shape ", shape_str(shape()));
  return shape()[a];
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device_name(device());
}

void* Tensor::raw_data() const {
  const TensorImpl& i = impl();
  if (!i.storage || !i.storage->data()) return nullptr;
  return static_cast<char*>(i.storage->data()) + i.offset * static_cast<int64_t>(dtype_size(i.dtype));
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return clone();
  if (device() == Device::cuda) {
    Tensor out = empty(shape(), dt, Device::cuda);
    EAT_CUDA_BRANCH(cuda::cast(raw_data(), dtype(), out.raw_data(), dt, numel()));
    return out;
  }
  Tensor out = empty(shape(), dt);
  const void* src = raw_data();
  void* dst = out.raw_data();
  for (int64_t i = 0; i < numel(); ++i) store_from_double(dst, dt, i, load_as_double(src, dtype(), i));
  return out;
}

Tensor Tensor::to(Device dev) const {
  Tensor out = empty(shape(), dtype(), dev);
  copy_bytes(out.raw_data(), dev, raw_data(), device(), nbytes());
  return out;
}

Tensor Tensor::clone() const { return to(device()); }

void Tensor::move_to_(Device dev) const {
  if (device() == dev) return;
  Tensor moved = to(dev);
  impl().storage = moved.impl().storage;
  impl().offset = 0;
}

void Tensor::copy_from(const Tensor& src) const {
  check_same_shape("copy_from", *this, src);
  if (src.dtype() == dtype()) {
    copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
  } else if (device() == Device::cuda && src.device() == Device::cuda) {
    EAT_CUDA_BRANCH(cuda::cast(src.raw_data(), src.dtype(), raw_data(), dtype(), numel()));
  } else {
    Tensor converted = src.to(Device::cpu).to(dtype());
    copy_bytes(raw_data(), device(), converted.raw_data(), Device::cpu, nbytes());
  }
}

std::vector<double> Tensor::to_f64_vector() const {
  Tensor host = device() == Device::cpu ? *this : to(Device::cpu);
  std::vector<double> out(static_cast<size_t>(numel()));
  const void* p = host.raw_data();
  for (int64_t i = 0; i < numel(); ++i) out[static_cast<size_t>(i)] = load_as_double(p, dtype(), i);
  return out;
}

double Tensor::item() const {
  EAT_CHECK(numel() == 1, "item() of a tensor with ", numel(), " elements ", shape_str(shape()));
  return to_f64_vector()[0];
}

void Tensor::fill_(double value) {
  if (device() == Device::cuda) {
    // Encoded on the host by the CPU conversion, so both devices hold the same bits.
    alignas(8) unsigned char element[8];
    store_from_double(element, dtype(), 0, value);
    EAT_CUDA_BRANCH(cuda::fill_pattern(raw_data(), element, dtype_size(dtype()), numel()));
    return;
  }
  void* p = raw_data();
  for (int64_t i = 0; i < numel(); ++i) store_from_double(p, dtype(), i, value);
}

void Tensor::zero_() { zero_bytes(raw_data(), device(), nbytes()); }

Tensor Tensor::reshape(const Shape& shape) const { return eat::reshape(*this, shape); }

Tensor Tensor::slice_outer(int64_t begin, int64_t end) const { return eat::slice_outer(*this, begin, end); }

Tensor& Tensor::requires_grad_(bool on) {
  EAT_CHECK(!on || is_floating(dtype()), "requires_grad on a ", describe(), " tensor: only floating types");
  EAT_CHECK(is_leaf(), "requires_grad_ on a non-leaf tensor (use detach() first)");
  impl().requires_grad = on;
  return *this;
}

void Tensor::backward(const Tensor& seed) const {
  if (seed.defined()) {
    autograd::run_backward(*this, seed);
  } else {
    EAT_CHECK(numel() == 1, "backward() without a seed gradient needs a one-element tensor, got ",
              shape_str(shape()));
    autograd::run_backward(*this, Tensor::full(shape(), 1.0, dtype()).to(device()));
  }
}

Tensor Tensor::detach() const {
  auto d = std::make_shared<TensorImpl>();
  d->storage = impl().storage;
  d->offset = impl().offset;
  d->shape = impl().shape;
  d->dtype = impl().dtype;
  return Tensor(std::move(d));
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  EAT_CHECK(a.shape() == b.shape(), op, ": shape mismatch ", shape_str(a.shape()), " vs ", shape_str(b.shape()));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  EAT_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch ", a.describe(), " vs ", b.describe());
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  EAT_CHECK(a.device() == b.device(), op, ": device mismatch ", a.describe(), " vs ", b.describe());
}

void check_floating(const char* op, const Tensor& a) {
  EAT_CHECK(a.defined(), op, ": undefined input tensor");
  EAT_CHECK(is_floating(a.dtype()), op, ": needs a floating tensor, got ", a.describe());
}

void check_dim(const char* op, const Tensor& a, int64_t dim, const char* what) {
  EAT_CHECK(a.dim() == dim, op, ": ", what, " must have ", dim, " dimensions, got ", shape_str(a.shape()));
}

}  // namespace eat
