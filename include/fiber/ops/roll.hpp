#pragma once
// roll: torch.roll. Elements shifted cyclically along one or more axes:
//   out[..., (i + shift) mod n, ...] = x[..., i, ...]
//   Tensor<float> y = roll(x, {-3, -3}, {1, 2});   // Swin's cyclic shift, x: [B, H, W, C]
// Shifts may be negative or larger than the size (taken modulo it); an axis may appear twice
// (its shifts add up). With no axes, x is rolled as a flat sequence and keeps its shape.
//
// Kernel: the output is written row by row, a row being everything from the innermost rolled
// axis inwards ([n_a, inner] elements). Such a row is the source row (found by un-shifting the
// outer indices) cut into two contiguous runs, so the work is two memcpys per row, rows split
// over the pool. Backward: roll by the negated shifts.
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber {

namespace detail {
// Per-axis shift in [0, n), summed over repeated axes; checks the arguments.
inline Shape roll_shifts(const Shape& shape, std::span<const std::int64_t> shifts, std::span<const int> axes) {
  FIBER_CHECK(shifts.size() == axes.size(), "roll: ", shifts.size(), " shifts for ", axes.size(),
              " axes (expected one shift per axis)");
  Shape out = Shape::filled(shape.rank(), 0);
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const int a = shape.axis(axes[i], "roll");
    const std::int64_t n = shape[a];
    if (n == 0) continue;
    out[a] = ((out[a] + shifts[i]) % n + n) % n;
  }
  return out;
}

// out (contiguous) = x (contiguous) rolled by `shift` per axis (each in [0, size)).
template <class T>
void roll_contiguous(T* out, const T* x, const Shape& shape, const Shape& shift) {
  const int rank = shape.rank();
  int a = rank - 1;  // innermost rolled axis
  while (a >= 0 && shift[a] == 0) --a;
  const std::int64_t total = shape.numel();
  if (total == 0) return;
  if (a < 0) {
    std::memcpy(out, x, total * sizeof(T));
    return;
  }
  std::int64_t inner = 1;
  for (int d = a + 1; d < rank; ++d) inner *= shape[d];
  const std::int64_t n = shape[a], row = n * inner, rows = total / row;
  const std::int64_t head = shift[a] * inner;  // out[0, head) comes from the source row's tail
  Shape outer_strides = Shape::filled(a, 0);     // element strides of the outer axes
  for (int d = a - 1; d >= 0; --d) outer_strides[d] = d == a - 1 ? row : outer_strides[d + 1] * shape[d + 1];
  const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t(1) << 15) / std::max<std::int64_t>(row, 1));
  parallel_for(0, rows, grain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      // Source row: each outer index moved back by its shift.
      std::int64_t rest = r, src = 0;
      for (int d = a - 1; d >= 0; --d) {
        const std::int64_t i = rest % shape[d];
        rest /= shape[d];
        std::int64_t j = i - shift[d];
        if (j < 0) j += shape[d];
        src += j * outer_strides[d];
      }
      const T* s = x + src;
      T* o = out + r * row;
      std::memcpy(o + head, s, (row - head) * sizeof(T));
      std::memcpy(o, s + (row - head), head * sizeof(T));
    }
  });
}
}  // namespace detail

template <class T>
Tensor<T> roll(const Tensor<T>& x, std::span<const std::int64_t> shifts, std::span<const int> axes) {
  FIBER_CHECK(x.defined(), "roll: undefined input");
  if (axes.empty()) {
    FIBER_CHECK(shifts.size() == 1, "roll: without axes exactly one shift is expected (the flat roll), got ",
                shifts.size());
    const int zero = 0;
    return roll(x.reshape({x.numel()}), shifts, std::span<const int>(&zero, 1)).reshape(x.shape());
  }
  const Shape shift = detail::roll_shifts(x.shape(), shifts, axes);
  const Tensor<T> xc = x.contiguous();
  Tensor<T> out = Tensor<T>::empty(x.shape());
  detail::roll_contiguous(out.data(), xc.data(), x.shape(), shift);
  return out;
}
template <class T>
Tensor<T> roll(const Tensor<T>& x, std::initializer_list<std::int64_t> shifts, std::initializer_list<int> axes) {
  return roll(x, std::span<const std::int64_t>(shifts.begin(), shifts.size()), std::span<const int>(axes.begin(), axes.size()));
}
template <class T>
Tensor<T> roll(const Tensor<T>& x, std::int64_t shift, int axis) {
  return roll(x, std::span<const std::int64_t>(&shift, 1), std::span<const int>(&axis, 1));
}

template <class T>
Var<T> roll(const Var<T>& x, std::span<const std::int64_t> shifts, std::span<const int> axes) {
  Tensor<T> out = roll(x.value(), shifts, axes);
  if (!needs_graph(x)) return Var<T>(std::move(out));
  std::vector<std::int64_t> back(shifts.begin(), shifts.end());
  for (auto& s : back) s = -s;
  return record("roll", out, {&x}, [back, axes_v = std::vector<int>(axes.begin(), axes.end())](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{roll(g, std::span<const std::int64_t>(back), std::span<const int>(axes_v))};
  });
}
template <class T>
Var<T> roll(const Var<T>& x, std::initializer_list<std::int64_t> shifts, std::initializer_list<int> axes) {
  return roll(x, std::span<const std::int64_t>(shifts.begin(), shifts.size()), std::span<const int>(axes.begin(), axes.size()));
}
template <class T>
Var<T> roll(const Var<T>& x, std::int64_t shift, int axis) {
  return roll(x, std::span<const std::int64_t>(&shift, 1), std::span<const int>(&axis, 1));
}

}  // namespace fiber
