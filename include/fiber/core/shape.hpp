#pragma once
// Shape: the sizes (or strides) of a tensor, at most kMaxDims of them, held inline.
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <ostream>
#include <span>
#include <sstream>
#include <string>

#include "fiber/core/error.hpp"

namespace fiber {

inline constexpr int kMaxDims = 6;

class Shape {
 public:
  using value_type = std::int64_t;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(std::span<const std::int64_t> dims) { assign(dims.begin(), dims.end()); }
  template <class It>
  Shape(It first, It last) {
    assign(first, last);
  }
  // A shape of `rank` dimensions, all equal to `value`.
  static Shape filled(int rank, std::int64_t value) {
    FIBER_CHECK(rank >= 0 && rank <= kMaxDims, "Shape: rank ", rank, " exceeds the maximum of ", kMaxDims);
    Shape s;
    s.rank_ = rank;
    std::fill_n(s.dims_.begin(), rank, value);
    return s;
  }

  int size() const { return rank_; }
  int rank() const { return rank_; }
  bool empty() const { return rank_ == 0; }
  std::int64_t operator[](int i) const { return dims_[i]; }
  std::int64_t& operator[](int i) { return dims_[i]; }
  std::int64_t back() const { return dims_[rank_ - 1]; }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  std::int64_t* begin() { return dims_.data(); }
  std::int64_t* end() { return dims_.data() + rank_; }
  const std::int64_t* data() const { return dims_.data(); }

  void push_back(std::int64_t d) {
    FIBER_CHECK(rank_ < kMaxDims, "Shape: more than ", kMaxDims, " dimensions");
    dims_[rank_++] = d;
  }
  void insert(int at, std::int64_t d) {
    FIBER_CHECK(rank_ < kMaxDims, "Shape: more than ", kMaxDims, " dimensions");
    for (int i = rank_; i > at; --i) dims_[i] = dims_[i - 1];
    dims_[at] = d;
    ++rank_;
  }
  void erase(int at) {
    for (int i = at; i + 1 < rank_; ++i) dims_[i] = dims_[i + 1];
    --rank_;
  }

  // Product of the sizes; throws when it overflows int64.
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) {
      FIBER_CHECK(dims_[i] >= 0, "Shape ", *this, ": negative size");
      FIBER_CHECK(!__builtin_mul_overflow(n, dims_[i], &n), "Shape ", *this, ": element count overflows");
    }
    return n;
  }

  // Maps a possibly negative axis to [0, rank); `op` names the caller in the error.
  int axis(int a, const char* op = "axis") const {
    FIBER_CHECK(a >= -rank_ && a < rank_, op, ": axis ", a, " is out of range for shape ", *this);
    return a < 0 ? a + rank_ : a;
  }

  friend bool operator==(const Shape& a, const Shape& b) {
    return a.rank_ == b.rank_ && std::equal(a.begin(), a.end(), b.begin());
  }

  friend std::ostream& operator<<(std::ostream& out, const Shape& s) {
    out << '[';
    for (int i = 0; i < s.rank_; ++i) out << (i ? ", " : "") << s.dims_[i];
    return out << ']';
  }
  std::string str() const {
    std::ostringstream o;
    o << *this;
    return o.str();
  }

 private:
  template <class It>
  void assign(It first, It last) {
    rank_ = 0;
    for (; first != last; ++first) push_back(static_cast<std::int64_t>(*first));
  }

  std::array<std::int64_t, kMaxDims> dims_{};
  int rank_ = 0;
};

// Row-major (C-order) strides of a shape, in elements.
inline Shape contiguous_strides(const Shape& shape) {
  Shape strides = Shape::filled(shape.rank(), 1);
  for (int i = shape.rank() - 2; i >= 0; --i) strides[i] = strides[i + 1] * std::max<std::int64_t>(shape[i + 1], 1);
  return strides;
}

// NumPy broadcasting of two shapes; `op` names the caller in the error.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast") {
  const int rank = std::max(a.rank(), b.rank());
  Shape out = Shape::filled(rank, 1);
  for (int i = 0; i < rank; ++i) {
    const int ia = a.rank() - rank + i, ib = b.rank() - rank + i;
    const std::int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    FIBER_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
                " cannot be broadcast (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace fiber
