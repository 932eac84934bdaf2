#pragma once
// softmax, log_softmax and logsumexp, for tensors and Vars, as in PyTorch:
//   softmax(x, axis)           exp(x - max) / sum(exp(x - max)) along `axis`
//   log_softmax(x, axis)       (x - max) - log(sum(exp(x - max)))
//   logsumexp(x, axes, keep)   log(sum(exp(x))) over `axes`, computed as max + log(sum(exp(x - max)))
// Numerically stable for any magnitude. Edge cases follow PyTorch: softmax and log_softmax of a
// line that is all -inf (or holds NaN or +inf) are NaN; logsumexp of all -inf is -inf, of a
// line holding +inf is +inf. Results are identical for any thread count.
//
// Backward: softmax gx = y * (g - sum(g * y)); log_softmax gx = g - exp(y) * sum(g);
// logsumexp gx = g * exp(x - y). Each keeps only its output (and logsumexp its input).
#include <cstdint>
#include <limits>
#include <type_traits>

#include "fiber/autograd/var.hpp"
#include "fiber/backend/cpu/softmax_kernel.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber {

namespace detail {

// A tensor viewed as [outer, n, inner] around one axis.
struct AxisLayout {
  std::int64_t outer = 1, n = 1, inner = 1;
};
inline AxisLayout axis_layout(const Shape& shape, int axis) {
  AxisLayout L;
  for (int d = 0; d < shape.rank(); ++d) {
    if (d < axis) L.outer *= shape[d];
    else if (d == axis) L.n = shape[d];
    else L.inner *= shape[d];
  }
  return L;
}

// The axis softmax runs along; a 0-d tensor counts as one element along axis 0 or -1 (PyTorch).
inline int softmax_axis(const Shape& shape, int axis, const char* op) {
  if (shape.rank() == 0) {
    FIBER_CHECK(axis == 0 || axis == -1, op, ": axis ", axis, " is out of range for a 0-d tensor (shape [])");
    return 0;
  }
  return shape.axis(axis, op);
}

template <class T>
Tensor<T> softmax_forward(const Tensor<T>& x, int axis, bool log) {
  static_assert(std::is_floating_point_v<T>, "softmax/log_softmax: needs a floating-point tensor (float or double)");
  const char* op = log ? "log_softmax" : "softmax";
  const int ax = softmax_axis(x.shape(), axis, op);
  const Tensor<T> xc = x.contiguous();
  Tensor<T> y = Tensor<T>::empty(x.shape());
  const AxisLayout L = x.dim() == 0 ? AxisLayout{} : axis_layout(x.shape(), ax);
  cpu::softmax_forward(xc.data(), y.data(), L.outer, L.n, L.inner, log);
  return y;
}

template <class T>
Tensor<T> softmax_backward(const Tensor<T>& y, const Tensor<T>& g, int axis, bool log) {
  const int ax = softmax_axis(y.shape(), axis, log ? "log_softmax" : "softmax");
  const Tensor<T> gc = g.contiguous();
  Tensor<T> gx = Tensor<T>::empty(y.shape());
  const AxisLayout L = y.dim() == 0 ? AxisLayout{} : axis_layout(y.shape(), ax);
  cpu::softmax_backward(y.data(), gc.data(), gx.data(), L.outer, L.n, L.inner, log);
  return gx;
}

}  // namespace detail

// ---- tensors ---------------------------------------------------------------------------------
template <class T>
Tensor<T> softmax(const Tensor<T>& x, int axis) {
  return detail::softmax_forward(x, axis, false);
}
template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, int axis) {
  return detail::softmax_forward(x, axis, true);
}

// log(sum(exp(x))) over `axes` (Axes::all() for every axis); reduced axes are kept with size 1
// when keepdim. Over an empty axis the sum is 0, so the result is -inf, as in PyTorch.
template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, const Axes& axes, bool keepdim = false) {
  static_assert(std::is_floating_point_v<T>, "logsumexp: needs a floating-point tensor (float or double)");
  const unsigned mask = axes.mask(x.shape(), "logsumexp");
  const Shape kept = reduced_shape(x.shape(), mask, true);
  Tensor<T> out;
  if (x.numel() == 0) {
    out = Tensor<T>::full(kept, -std::numeric_limits<T>::infinity());
  } else {
    // The max, with infinite maxima replaced by 0: then exp(x - m) is exp(-inf) = 0 for a line
    // of -inf (giving log 0 = -inf) and exp(+inf) for a line holding +inf (giving +inf).
    Tensor<T> m = amax(x, axes, true);
    m.assign(where(abs(m) == std::numeric_limits<T>::infinity(), T(0), m));
    out = Tensor<T>::empty(kept);
    reduce_into<reducers::Sum>(out, exp(x - m));
    out.assign(log(out) + m);
  }
  return keepdim ? out : out.reshape(reduced_shape(x.shape(), mask, false));
}

// ---- Vars ------------------------------------------------------------------------------------
template <class T>
Var<T> softmax(const Var<T>& x, int axis) {
  Tensor<T> y = softmax(x.value(), axis);
  if (!needs_graph(x)) return Var<T>(std::move(y));
  // The backward reads the output: writing y.value() in place before it is caught.
  return record("softmax", y, {&x}, [ys = save_for_backward(y), axis](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{detail::softmax_backward(ys.get(), g, axis, false)};
  });
}
template <class T>
Var<T> log_softmax(const Var<T>& x, int axis) {
  Tensor<T> y = log_softmax(x.value(), axis);
  if (!needs_graph(x)) return Var<T>(std::move(y));
  // The backward reads the output: writing y.value() in place before it is caught.
  return record("log_softmax", y, {&x}, [ys = save_for_backward(y), axis](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{detail::softmax_backward(ys.get(), g, axis, true)};
  });
}
template <class T>
Var<T> logsumexp(const Var<T>& x, const Axes& axes, bool keepdim = false) {
  const unsigned mask = axes.mask(x.shape(), "logsumexp");
  Tensor<T> y = logsumexp(x.value(), axes, keepdim);
  if (!needs_graph(x)) return Var<T>(std::move(y));
  const Shape kept = reduced_shape(x.shape(), mask, true);
  return record("logsumexp", y, {&x},
                [xs = save_for_backward(x.value()), ys = save_for_backward(y.reshape(kept))](const Tensor<T>& g,
                                                                                             GradNeeds) {
                  return std::vector<Tensor<T>>{Tensor<T>(g.reshape(ys.shape()) * exp(xs.get() - ys.get()))};
                });
}

// An expression (softmax(q * scale + mask, -1)) is evaluated first: to a Var when it holds Vars.
template <Expression E>
auto softmax(const E& e, int axis) {
  if constexpr (E::has_vars) return softmax(Var<result_t<E>>(e), axis);
  else return softmax(Tensor<result_t<E>>(e), axis);
}
template <Expression E>
auto log_softmax(const E& e, int axis) {
  if constexpr (E::has_vars) return log_softmax(Var<result_t<E>>(e), axis);
  else return log_softmax(Tensor<result_t<E>>(e), axis);
}

}  // namespace fiber
