#pragma once
// Tensor<T>: a strided view of shared storage, up to kMaxDims dimensions. Copying a Tensor copies
// the handle, not the data (as in PyTorch); views (reshape, permute, narrow, expand, ...) share
// storage; clone() and contiguous() copy. Elementwise arithmetic on tensors builds lazy
// expressions (fiber/expr/), evaluated in one pass when assigned to a Tensor.
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <span>
#include <type_traits>
#include <vector>

#include "fiber/core/dtype.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/shape.hpp"
#include "fiber/core/storage.hpp"
#include "fiber/core/strided_loop.hpp"

namespace fiber {

// Expressions derive from ExprBase; see fiber/expr/expression.hpp.
struct ExprBase {};
template <class E>
concept Expression = std::is_base_of_v<ExprBase, std::remove_cvref_t<E>>;

template <class T>
class Tensor;

// Evaluates an expression into `out` (same shape); defined in fiber/expr/evaluate.hpp.
template <class T, Expression E>
void evaluate_into(const Tensor<T>& out, const E& expr);

namespace detail {
// dst = src (same shape, a strided copy) through the expression evaluator, whose tiled transpose
// handles a source read across its contiguous dimension; defined in fiber/expr/evaluate.hpp,
// which this header includes at its end.
template <class T>
void copy_through_evaluator(const Tensor<T>& dst, const Tensor<T>& src);
}  // namespace detail

template <class T>
class Tensor {
  static_assert(std::is_arithmetic_v<T>, "Tensor<T>: T must be an arithmetic type");

 public:
  using value_type = T;

  // An undefined tensor (no storage); defined() is false.
  Tensor() = default;

  // Evaluates an elementwise expression into a new contiguous tensor.
  template <Expression E>
  Tensor(const E& expr) : Tensor(empty(expr.shape())) {  // NOLINT: implicit on purpose
    static_assert(!std::remove_cvref_t<E>::has_vars,
                  "an expression of Vars evaluates to a Var (fiber::Var<T> y = ...), which records its gradient");
    evaluate_into(*this, expr);
  }

  // --- factories -------------------------------------------------------------------------
  static Tensor empty(const Shape& shape) {
    Tensor t;
    const std::int64_t n = shape.numel();
    std::size_t bytes = 0;
    FIBER_CHECK(!__builtin_mul_overflow(static_cast<std::size_t>(n), sizeof(T), &bytes),
                "Tensor::empty: ", shape, " is too large");
    t.storage_ = Storage::allocate(bytes);
    t.shape_ = shape;
    t.strides_ = contiguous_strides(shape);
    return t;
  }
  static Tensor full(const Shape& shape, T value) {
    Tensor t = empty(shape);
    std::fill_n(t.data(), t.numel(), value);
    return t;
  }
  static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  // [start, start+step, ...) below `end` (above it for a negative step).
  static Tensor arange(T start, T end, T step = T(1)) {
    FIBER_CHECK(step != T(0), "arange: step must not be zero");
    const double span = (static_cast<double>(end) - static_cast<double>(start)) / static_cast<double>(step);
    const std::int64_t n = span > 0 ? static_cast<std::int64_t>(std::ceil(span)) : 0;
    Tensor t = empty({n});
    for (std::int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<T>(start + static_cast<T>(i) * step);
    return t;
  }
  static Tensor arange(T end) { return arange(T(0), end); }
  // Copies `values` (row-major) into a new tensor of `shape`.
  static Tensor from_data(const Shape& shape, std::span<const T> values) {
    FIBER_CHECK(static_cast<std::int64_t>(values.size()) == shape.numel(), "Tensor::from_data: ",
                values.size(), " values for shape ", shape, " (", shape.numel(), " elements)");
    Tensor t = empty(shape);
    if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(T));
    return t;
  }
  static Tensor from_data(const Shape& shape, std::initializer_list<T> values) {
    return from_data(shape, std::span<const T>(values.begin(), values.size()));
  }
  static Tensor from_data(const Shape& shape, const std::vector<T>& values) {
    return from_data(shape, std::span<const T>(values.data(), values.size()));
  }
  static Tensor scalar(T value) { return full({}, value); }
  // A view of existing memory (no copy); `keep_alive` keeps it valid.
  static Tensor borrow(T* data, const Shape& shape, std::shared_ptr<void> keep_alive) {
    Tensor t;
    t.storage_ = Storage::borrow(data, static_cast<std::size_t>(shape.numel()) * sizeof(T), std::move(keep_alive));
    t.shape_ = shape;
    t.strides_ = contiguous_strides(shape);
    return t;
  }
  // The most general view constructor; checks that the view stays inside the storage.
  static Tensor view_of(std::shared_ptr<Storage> storage, std::int64_t offset, const Shape& shape, const Shape& strides) {
    FIBER_CHECK(storage, "Tensor::view_of: no storage");
    FIBER_CHECK(shape.rank() == strides.rank(), "Tensor::view_of: shape ", shape, " and strides ", strides,
                " differ in rank");
    Tensor t;
    t.storage_ = std::move(storage);
    t.offset_ = offset;
    t.shape_ = shape;
    t.strides_ = strides;
    t.check_within_storage("Tensor::view_of");
    return t;
  }

  // --- properties ------------------------------------------------------------------------
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int dim() const { return shape_.rank(); }
  std::int64_t size(int axis) const { return shape_[shape_.axis(axis, "Tensor::size")]; }
  std::int64_t stride(int axis) const { return strides_[shape_.axis(axis, "Tensor::stride")]; }
  std::int64_t numel() const { return shape_.numel(); }
  std::int64_t offset() const { return offset_; }
  static constexpr DType dtype() { return dtype_of_v<T>; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  // Pointer to the first element (the view's offset applied).
  T* data() const { return storage_ ? static_cast<T*>(storage_->data()) + offset_ : nullptr; }

  bool is_contiguous() const {
    std::int64_t expected = 1;
    for (int i = dim() - 1; i >= 0; --i) {
      if (shape_[i] == 1) continue;
      if (strides_[i] != expected) return false;
      expected *= shape_[i];
    }
    return true;
  }

  // --- element access (checked) ---------------------------------------------------------
  T& at(std::initializer_list<std::int64_t> index) const {
    FIBER_CHECK(static_cast<int>(index.size()) == dim(), "Tensor::at: ", index.size(),
                " indices for a tensor of shape ", shape_);
    std::int64_t off = 0;
    int d = 0;
    for (std::int64_t i : index) {
      const std::int64_t n = shape_[d];
      FIBER_CHECK(i >= -n && i < n, "Tensor::at: index ", i, " is out of range for dimension ", d, " of shape ", shape_);
      off += (i < 0 ? i + n : i) * strides_[d++];
    }
    return data()[off];
  }
  T item() const {
    FIBER_CHECK(numel() == 1, "Tensor::item: tensor of shape ", shape_, " has ", numel(), " elements, not 1");
    std::int64_t off = 0;
    return data()[off];
  }
  // The elements in row-major order.
  std::vector<T> to_vector() const {
    Tensor c = contiguous();
    return std::vector<T>(c.data(), c.data() + c.numel());
  }

  // --- views -----------------------------------------------------------------------------
  // A view with the new shape (one size may be -1) when the strides allow it, else a copy.
  Tensor reshape(Shape shape) const {
    shape = infer_size(shape, "reshape");
    Shape strides;
    if (view_strides(shape, strides)) return restrided(shape, strides, offset_);
    return contiguous().view(shape);
  }
  // Like reshape, but never copies: throws when the strides do not allow a view.
  Tensor view(Shape shape) const {
    shape = infer_size(shape, "view");
    Shape strides;
    FIBER_CHECK(view_strides(shape, strides), "view: cannot view shape ", shape_, " with strides ", strides_,
                " as ", shape, " without a copy (use reshape)");
    return restrided(shape, strides, offset_);
  }
  Tensor flatten(int start = 0, int end = -1) const {
    if (dim() == 0) return reshape({1});
    start = shape_.axis(start, "flatten");
    end = shape_.axis(end, "flatten");
    FIBER_CHECK(start <= end, "flatten: start axis ", start, " is after end axis ", end);
    Shape s;
    for (int i = 0; i < start; ++i) s.push_back(shape_[i]);
    std::int64_t n = 1;
    for (int i = start; i <= end; ++i) n *= shape_[i];
    s.push_back(n);
    for (int i = end + 1; i < dim(); ++i) s.push_back(shape_[i]);
    return reshape(s);
  }
  Tensor permute(std::initializer_list<int> order) const { return permute(std::span<const int>(order.begin(), order.size())); }
  Tensor permute(std::span<const int> order) const {
    FIBER_CHECK(static_cast<int>(order.size()) == dim(), "permute: ", order.size(), " axes for shape ", shape_);
    Shape s, st;
    bool seen[kMaxDims] = {};
    for (int a : order) {
      const int ax = shape_.axis(a, "permute");
      FIBER_CHECK(!seen[ax], "permute: axis ", a, " repeated (shape ", shape_, ")");
      seen[ax] = true;
      s.push_back(shape_[ax]);
      st.push_back(strides_[ax]);
    }
    return restrided(s, st, offset_);
  }
  Tensor transpose(int a, int b) const {
    a = shape_.axis(a, "transpose");
    b = shape_.axis(b, "transpose");
    Shape s = shape_, st = strides_;
    std::swap(s[a], s[b]);
    std::swap(st[a], st[b]);
    return restrided(s, st, offset_);
  }
  // Transpose of a 2-D tensor.
  Tensor t() const {
    FIBER_CHECK(dim() == 2, "t: expects a 2-D tensor, got shape ", shape_);
    return transpose(0, 1);
  }
  // Elements [start, start+length) along `axis`.
  Tensor narrow(int axis, std::int64_t start, std::int64_t length) const {
    axis = shape_.axis(axis, "narrow");
    const std::int64_t n = shape_[axis];
    if (start < 0) start += n;
    FIBER_CHECK(start >= 0 && length >= 0 && start <= n && length <= n - start, "narrow: range [", start, ", ",
                start, "+", length, ") is outside dimension ", axis, " of shape ", shape_);
    Shape s = shape_;
    s[axis] = length;
    return restrided(s, strides_, offset_ + start * strides_[axis]);
  }
  // Python-style slice along `axis`: start/end clamped, negative counts from the end, step > 0.
  Tensor slice(int axis, std::int64_t start, std::int64_t end, std::int64_t step = 1) const {
    axis = shape_.axis(axis, "slice");
    FIBER_CHECK(step > 0, "slice: step must be positive, got ", step);
    const std::int64_t n = shape_[axis];
    auto clamp = [n](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + n : i, 0, n); };
    start = clamp(start);
    end = std::max(clamp(end), start);
    Shape s = shape_, st = strides_;
    s[axis] = (end - start + step - 1) / step;
    st[axis] = strides_[axis] * step;
    return restrided(s, st, offset_ + start * strides_[axis]);
  }
  // The slice at `index` along `axis`, with that axis removed.
  Tensor select(int axis, std::int64_t index) const {
    axis = shape_.axis(axis, "select");
    const std::int64_t n = shape_[axis];
    FIBER_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dimension ", axis,
                " of shape ", shape_);
    if (index < 0) index += n;
    Shape s = shape_, st = strides_;
    s.erase(axis);
    st.erase(axis);
    return restrided(s, st, offset_ + index * strides_[axis]);
  }
  // Broadcast view to `shape` (NumPy rules; -1 keeps a size). Expanded dims get stride 0.
  Tensor expand(const Shape& shape) const {
    FIBER_CHECK(shape.rank() >= dim(), "expand: cannot expand shape ", shape_, " to fewer dimensions ", shape);
    const int lead = shape.rank() - dim();
    Shape s = shape, st = Shape::filled(shape.rank(), 0);
    for (int i = 0; i < shape.rank(); ++i) {
      if (i < lead) {
        FIBER_CHECK(shape[i] >= 0, "expand: size -1 is not allowed for a new leading dimension (", shape, ")");
        continue;
      }
      const std::int64_t have = shape_[i - lead];
      if (shape[i] == -1 || shape[i] == have) {
        s[i] = have;
        st[i] = strides_[i - lead];
      } else {
        FIBER_CHECK(have == 1, "expand: dimension ", i - lead, " of shape ", shape_, " has size ", have,
                    " and cannot be expanded to ", shape[i], " (target ", shape, ")");
      }
    }
    return restrided(s, st, offset_);
  }
  Tensor expand_as(const Shape& shape) const { return expand(shape); }
  Tensor unsqueeze(int axis) const {
    FIBER_CHECK(axis >= -dim() - 1 && axis <= dim(), "unsqueeze: axis ", axis, " is out of range for shape ", shape_);
    if (axis < 0) axis += dim() + 1;
    Shape s = shape_, st = strides_;
    s.insert(axis, 1);
    st.insert(axis, axis < dim() ? strides_[axis] * shape_[axis] : 1);
    return restrided(s, st, offset_);
  }
  Tensor squeeze(int axis) const {
    axis = shape_.axis(axis, "squeeze");
    if (shape_[axis] != 1) return *this;
    Shape s = shape_, st = strides_;
    s.erase(axis);
    st.erase(axis);
    return restrided(s, st, offset_);
  }
  Tensor squeeze() const {
    Shape s, st;
    for (int i = 0; i < dim(); ++i)
      if (shape_[i] != 1) {
        s.push_back(shape_[i]);
        st.push_back(strides_[i]);
      }
    return restrided(s, st, offset_);
  }

  // --- copies ----------------------------------------------------------------------------
  Tensor contiguous() const { return is_contiguous() ? *this : clone(); }
  Tensor clone() const {
    Tensor out = empty(shape_);
    out.copy_(*this);
    return out;
  }
  // Element type conversion (static_cast per element), always a new tensor.
  template <class U>
  Tensor<U> to() const {
    Tensor<U> out = Tensor<U>::empty(shape_);
    out.copy_(*this);
    return out;
  }
  // Copies `src` (broadcast to this shape, any element type) into this view's elements.
  // Runs contiguous on both sides are memcpy'd; a float or double copy with strided runs (a
  // transposed or permuted view made contiguous) goes through the expression evaluator, which
  // transposes such operands tile by tile instead of reading a cache line per element.
  template <class U>
  const Tensor& copy_(const Tensor<U>& src) const {
    bump_version();
    const Tensor<U> b = src.shape() == shape_ ? src : src.expand(shape_);
    StridedLayout<2> L = coalesce<2>(shape_, {strides_, b.strides()});
    if constexpr (std::is_same_v<T, U> && std::is_floating_point_v<T>) {
      if (L.strides[0].back() != 1 || L.strides[1].back() > 1) {
        detail::copy_through_evaluator(*this, b);
        return *this;
      }
    }
    T* dst = data();
    const U* s = b.data();
    parallel_runs<2>(L, kElementwiseGrain, [&](const auto& off, std::int64_t n, const auto& inc) {
      T* d = dst + off[0];
      const U* p = s + off[1];
      if (inc[0] == 1 && inc[1] == 1) {
        if constexpr (std::is_same_v<T, U>) std::memcpy(d, p, n * sizeof(T));
        else for (std::int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(p[i]);
      } else {
        for (std::int64_t i = 0; i < n; ++i) d[i * inc[0]] = static_cast<T>(p[i * inc[1]]);
      }
    });
    return *this;
  }
  const Tensor& fill_(T value) const {
    bump_version();
    StridedLayout<1> L = coalesce<1>(shape_, {strides_});
    T* dst = data();
    parallel_runs<1>(L, kElementwiseGrain, [&](const auto& off, std::int64_t n, const auto& inc) {
      for (std::int64_t i = 0; i < n; ++i) dst[off[0] + i * inc[0]] = value;
    });
    return *this;
  }
  // Evaluates an expression (broadcast to this shape) into this view's elements.
  template <Expression E>
  const Tensor& assign(const E& expr) const {
    evaluate_into(*this, expr);
    return *this;
  }

  // The storage's version counter (0 for an undefined tensor): it counts the in-place writes to
  // any view of the storage (copy_, fill_, assign, evaluate_into). Autograd compares it with the
  // version a node saved to detect a tensor modified between forward and backward.
  std::uint64_t version() const { return storage_ ? storage_->version() : 0; }
  // Counts an in-place write made some other way (a kernel writing through data()).
  void bump_version() const {
    if (storage_) storage_->bump_version();
  }

  // True when both are views of the same storage.
  bool shares_storage_with(const Tensor& other) const { return storage_ && storage_ == other.storage_; }

 private:
  template <class U>
  friend class Tensor;

  Tensor restrided(const Shape& shape, const Shape& strides, std::int64_t offset) const {
    Tensor t;
    t.storage_ = storage_;
    t.shape_ = shape;
    t.strides_ = strides;
    t.offset_ = offset;
    return t;
  }

  // Resolves one -1 entry and checks the element count.
  Shape infer_size(Shape shape, const char* op) const {
    int infer = -1;
    std::int64_t known = 1;
    for (int i = 0; i < shape.rank(); ++i) {
      if (shape[i] == -1) {
        FIBER_CHECK(infer < 0, op, ": more than one -1 in ", shape);
        infer = i;
      } else {
        FIBER_CHECK(shape[i] >= 0, op, ": negative size in ", shape);
        known *= shape[i];
      }
    }
    const std::int64_t n = numel();
    if (infer >= 0) {
      FIBER_CHECK(known != 0 && n % known == 0, op, ": cannot infer -1 in ", shape, " for ", n, " elements (shape ",
                  shape_, ")");
      shape[infer] = n / known;
    }
    FIBER_CHECK(shape.numel() == n, op, ": shape ", shape, " has ", shape.numel(), " elements, tensor of shape ",
                shape_, " has ", n);
    return shape;
  }

  // Strides that let `shape` view this tensor's elements in row-major order, if any exist.
  // Groups of old dimensions that are contiguous with each other may be split or merged freely.
  bool view_strides(const Shape& shape, Shape& out) const {
    out = Shape::filled(shape.rank(), 1);
    if (numel() == 0 || dim() == 0) {
      out = contiguous_strides(shape);
      return true;
    }
    int new_dim = shape.rank() - 1;
    std::int64_t chunk_base = strides_[dim() - 1], tensor_numel = 1, view_numel = 1;
    for (int d = dim() - 1; d >= 0; --d) {
      tensor_numel *= shape_[d];
      // End of a chunk of old dims contiguous with each other: lay the new dims over it.
      if (d == 0 || (shape_[d - 1] != 1 && strides_[d - 1] != tensor_numel * chunk_base)) {
        while (new_dim >= 0 && (view_numel < tensor_numel || shape[new_dim] == 1)) {
          out[new_dim] = view_numel * chunk_base;
          view_numel *= shape[new_dim];
          --new_dim;
        }
        if (view_numel != tensor_numel) return false;
        if (d > 0) {
          chunk_base = strides_[d - 1];
          tensor_numel = 1;
          view_numel = 1;
        }
      }
    }
    return new_dim == -1;
  }

  void check_within_storage(const char* op) const {
    if (numel() == 0) return;
    std::int64_t lo = offset_, hi = offset_;
    for (int i = 0; i < dim(); ++i) {
      FIBER_CHECK(shape_[i] >= 0, op, ": negative size in ", shape_);
      const std::int64_t reach = (shape_[i] - 1) * strides_[i];
      (reach < 0 ? lo : hi) += reach;
    }
    const auto capacity = static_cast<std::int64_t>(storage_->bytes() / sizeof(T));
    FIBER_CHECK(lo >= 0 && hi < capacity, op, ": view (offset ", offset_, ", shape ", shape_, ", strides ", strides_,
                ") reaches outside its storage of ", capacity, " elements");
  }

  std::shared_ptr<Storage> storage_;
  std::int64_t offset_ = 0;
  Shape shape_;
  Shape strides_;
};

// Free-function factories: fiber::zeros<float>({2, 3}).
template <class T> Tensor<T> empty(const Shape& s) { return Tensor<T>::empty(s); }
template <class T> Tensor<T> zeros(const Shape& s) { return Tensor<T>::zeros(s); }
template <class T> Tensor<T> ones(const Shape& s) { return Tensor<T>::ones(s); }
template <class T> Tensor<T> full(const Shape& s, T v) { return Tensor<T>::full(s, v); }
template <class T> Tensor<T> arange(T start, T end, T step = T(1)) { return Tensor<T>::arange(start, end, step); }
template <class T> Tensor<T> tensor(const Shape& s, std::initializer_list<T> v) { return Tensor<T>::from_data(s, v); }

// Prints shape and values (at most the first 64 per tensor), for debugging and test messages.
template <class T>
std::ostream& operator<<(std::ostream& out, const Tensor<T>& t) {
  out << "Tensor" << t.shape();
  if (!t.defined()) return out << "(undefined)";
  auto v = t.to_vector();
  out << " {";
  for (std::size_t i = 0; i < v.size() && i < 64; ++i) out << (i ? ", " : "") << +v[i];
  if (v.size() > 64) out << ", ...";
  return out << '}';
}

}  // namespace fiber

// Tensor::copy_ needs the evaluator (detail::copy_through_evaluator); see the note at the top of
// fiber/expr/expression.hpp for why the include waits when that header is read first.
#ifndef FIBER_EXPRESSION_HPP_IN_PROGRESS
#include "fiber/expr/evaluate.hpp"
#endif
