#pragma once
// Tensor: a shape, a dtype and a device over a shared storage; contiguous row-major always.
// Views are only made where they are free: reshape, and a slice of the outer dimension.
// A Tensor is a handle: copies share the same TensorImpl (and so the same gradient slot).
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"
#include "framework/storage.h"

namespace eat {

class Generator;
struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::f32;

  // autograd
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // the op that produced this tensor (null for leaves)
  int output_nr = 0;              // which output of grad_fn this is
  std::shared_ptr<TensorImpl> grad;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  static Tensor randn(const Shape& shape, Generator& gen, double stddev = 1.0, DType dtype = DType::f32);
  static Tensor uniform(const Shape& shape, Generator& gen, double lo, double hi, DType dtype = DType::f32);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

  // ---- metadata
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t axis) const;  // negative counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage ? impl().storage->device() : Device::cpu; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  std::string describe() const;  // "f32[2, 3] cpu"

  // ---- data access (host pointers on cpu, device pointers on cuda); checks the element type
  template <typename T> T* data() const {
    EAT_CHECK(dtype_of<T>::value == dtype(), "tensor holds ", dtype_name(dtype()), ", accessed as ",
              dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // ---- conversions (copies; no autograd)
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor clone() const;
  // Moves the data to `device` in place: the shared TensorImpl gets a copy of the storage there,
  // so every handle to this tensor (a module's field, the parameter list, an optimizer) sees the
  // move. A no-op when the tensor is already there. Views of the old storage keep the old copy.
  void move_to_(Device device) const;
  void copy_from(const Tensor& src) const;  // same shape; any dtype/device
  std::vector<double> to_f64_vector() const;
  double item() const;  // a one-element tensor's value
  void fill_(double value);
  void zero_();

  // ---- views (differentiable; share storage)
  Tensor reshape(const Shape& shape) const;
  Tensor slice_outer(int64_t begin, int64_t end) const;  // rows [begin, end) of axis 0

  // ---- autograd
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const { return !impl().grad_fn; }
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) const { impl().grad = g.impl_; }
  void zero_grad() const { impl().grad.reset(); }
  // Runs backpropagation from this tensor. A one-element tensor needs no seed gradient.
  void backward(const Tensor& seed = Tensor()) const;
  // The same data with no autograd history.
  Tensor detach() const;

  TensorImpl& impl() const {
    EAT_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Shape and dtype checks for ops: errors print the op, both shapes and the dtypes.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_floating(const char* op, const Tensor& a);
void check_dim(const char* op, const Tensor& a, int64_t dim, const char* what);

}  // namespace eat
