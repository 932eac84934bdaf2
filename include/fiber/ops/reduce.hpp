#pragma once
// Reductions along axes: sum, mean, amax, amin, var, argmax, argmin, for tensors, elementwise
// expressions (fused into the reduction) and Vars (with their gradients).
#include <cstdint>
#include <limits>

#include "fiber/autograd/var.hpp"
#include "fiber/expr/reduce.hpp"

namespace fiber {

namespace detail {
template <class R, class X>
auto reduce(const X& x, const Axes& axes, bool keepdim, bool mean, const char* op) {
  const auto e = as_expr(x);
  using E = std::remove_cvref_t<decltype(e)>;
  using V = result_t<E>;
  const Shape in = e.shape();
  const unsigned mask = axes.mask(in, op);
  std::int64_t n = 1;
  for (int d = 0; d < in.rank(); ++d)
    if (mask & (1u << d)) n *= in[d];
  Tensor<V> out = Tensor<V>::empty(reduced_shape(in, mask, true));
  if (mean) FIBER_CHECK(n > 0, "mean: reduction over an empty dimension (shape ", in, ")");
  reduce_into<R>(out, e, mean ? 1.0 / double(n) : 1.0);
  return keepdim ? out : out.reshape(reduced_shape(in, mask, false));
}
}  // namespace detail

// sum/mean/amax/amin over `axes` (all by default) of a tensor or an expression.
template <Operand X> requires PlainOperand<X>
auto sum(const X& x, const Axes& axes = {}, bool keepdim = false) {
  return detail::reduce<reducers::Sum>(x, axes, keepdim, false, "sum");
}
template <Operand X> requires PlainOperand<X>
auto mean(const X& x, const Axes& axes = {}, bool keepdim = false) {
  static_assert(std::is_floating_point_v<result_t<expr_t<X>>>, "mean: needs a floating-point operand");
  return detail::reduce<reducers::Sum>(x, axes, keepdim, true, "mean");
}
template <Operand X> requires PlainOperand<X>
auto amax(const X& x, const Axes& axes = {}, bool keepdim = false) {
  return detail::reduce<reducers::Max>(x, axes, keepdim, false, "amax");
}
template <Operand X> requires PlainOperand<X>
auto amin(const X& x, const Axes& axes = {}, bool keepdim = false) {
  return detail::reduce<reducers::Min>(x, axes, keepdim, false, "amin");
}

// Variance over `axes` with Bessel's correction (divides by n - correction), as torch.var.
template <Operand X> requires PlainOperand<X>
auto var(const X& x, const Axes& axes = {}, bool keepdim = false, int correction = 1) {
  const auto e = as_expr(x);
  const Shape in = e.shape();
  const unsigned mask = axes.mask(in, "var");
  std::int64_t n = 1;
  for (int d = 0; d < in.rank(); ++d)
    if (mask & (1u << d)) n *= in[d];
  auto m = mean(e, axes, true);
  using V = typename decltype(m)::value_type;
  Tensor<V> out = Tensor<V>::empty(reduced_shape(in, mask, true));
  reduce_into<reducers::Sum>(out, square(e - m), n - correction > 0 ? 1.0 / double(n - correction)
                                                                     : std::numeric_limits<double>::quiet_NaN());
  return keepdim ? out : out.reshape(reduced_shape(in, mask, false));
}

// ---- Vars ------------------------------------------------------------------------------------
namespace detail {
inline std::int64_t reduced_count(const Shape& in, unsigned mask) {
  std::int64_t n = 1;
  for (int d = 0; d < in.rank(); ++d)
    if (mask & (1u << d)) n *= in[d];
  return n;
}
}  // namespace detail

template <class T>
Var<T> sum(const Var<T>& x, const Axes& axes = {}, bool keepdim = false) {
  const unsigned mask = axes.mask(x.shape(), "sum");
  if (!needs_graph(x)) return Var<T>(sum(x.value(), axes, keepdim));
  return record("sum", sum(x.value(), axes, keepdim), {&x}, [in = x.shape(), mask](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{g.reshape(reduced_shape(in, mask, true)).expand(in)};
  });
}
template <class T>
Var<T> mean(const Var<T>& x, const Axes& axes = {}, bool keepdim = false) {
  const unsigned mask = axes.mask(x.shape(), "mean");
  const double n = double(detail::reduced_count(x.shape(), mask));
  if (!needs_graph(x)) return Var<T>(mean(x.value(), axes, keepdim));
  return record("mean", mean(x.value(), axes, keepdim), {&x}, [in = x.shape(), mask, n](const Tensor<T>& g, GradNeeds) {
    return std::vector<Tensor<T>>{Tensor<T>(g.reshape(reduced_shape(in, mask, true)) * (1.0 / n)).expand(in)};
  });
}
namespace detail {
// amax/amin: the gradient goes to the extreme elements, split evenly among ties (as PyTorch).
template <class R, class T>
Var<T> extreme(const Var<T>& x, const Axes& axes, bool keepdim, const char* op) {
  const unsigned mask = axes.mask(x.shape(), op);
  Tensor<T> m = reduce<R>(x.value(), axes, true, false, op);
  Tensor<T> out = keepdim ? m : m.reshape(reduced_shape(x.shape(), mask, false));
  if (!needs_graph(x)) return Var<T>(std::move(out));
  return record(op, out, {&x}, [xs = save_for_backward(x.value()), ms = save_for_backward(m)](const Tensor<T>& g,
                                                                                              GradNeeds) {
    const Tensor<T>& mk = ms.get();  // the output too (keepdim): written in place, it is caught here
    auto hit = xs.get() == mk;
    Tensor<T> count = Tensor<T>::empty(mk.shape());
    reduce_into<reducers::Sum>(count, where(hit, 1.0, 0.0));
    const Tensor<T> gk = g.reshape(mk.shape());
    return std::vector<Tensor<T>>{Tensor<T>(where(hit, gk / count, 0.0))};
  });
}
}  // namespace detail
template <class T>
Var<T> amax(const Var<T>& x, const Axes& axes = {}, bool keepdim = false) {
  return detail::extreme<reducers::Max>(x, axes, keepdim, "amax");
}
template <class T>
Var<T> amin(const Var<T>& x, const Axes& axes = {}, bool keepdim = false) {
  return detail::extreme<reducers::Min>(x, axes, keepdim, "amin");
}
template <class T>
Var<T> var(const Var<T>& x, const Axes& axes = {}, bool keepdim = false, int correction = 1) {
  const unsigned mask = axes.mask(x.shape(), "var");
  const double n = double(detail::reduced_count(x.shape(), mask));
  if (!needs_graph(x)) return Var<T>(var(x.value(), axes, keepdim, correction));
  return record("var", var(x.value(), axes, keepdim, correction), {&x},
                [xs = save_for_backward(x.value()), mask, n, correction](const Tensor<T>& g, GradNeeds) {
                  const Tensor<T>& xv = xs.get();
                  Tensor<T> mu = Tensor<T>::empty(reduced_shape(xv.shape(), mask, true));
                  reduce_into<reducers::Sum>(mu, as_expr(xv), 1.0 / n);
                  const Tensor<T> gk = g.reshape(mu.shape());
                  return std::vector<Tensor<T>>{Tensor<T>(gk * (xv - mu) * (2.0 / (n - correction)))};
                });
}

// An expression of Vars is evaluated to a Var first.
template <Expression E> requires E::has_vars
auto sum(const E& e, const Axes& axes = {}, bool keepdim = false) { return sum(Var<result_t<E>>(e), axes, keepdim); }
template <Expression E> requires E::has_vars
auto mean(const E& e, const Axes& axes = {}, bool keepdim = false) { return mean(Var<result_t<E>>(e), axes, keepdim); }

// Index of the largest (argmax) or smallest (argmin) element along `axis`; the first on ties;
// a NaN counts as the largest, as in PyTorch.
template <class T, bool Largest>
Tensor<std::int64_t> arg_extreme(const Tensor<T>& x, int axis, bool keepdim, const char* op) {
  axis = x.shape().axis(axis, op);
  const std::int64_t n = x.shape()[axis];
  FIBER_CHECK(n > 0, op, ": empty dimension ", axis, " (shape ", x.shape(), ")");
  Shape kept = x.shape();
  kept[axis] = 1;
  Tensor<std::int64_t> out = Tensor<std::int64_t>::empty(kept);
  const Tensor<T> moved = x.transpose(axis, -1).contiguous();  // [..., n]
  const std::int64_t rows = moved.numel() / n;
  const T* src = moved.data();
  // Results in `moved`'s row order, then transposed back into place.
  Tensor<std::int64_t> out_moved = Tensor<std::int64_t>::empty(reduced_shape(moved.shape(), 1u << (moved.dim() - 1), true));
  std::int64_t* om = out_moved.data();
  parallel_for(0, rows, std::max<std::int64_t>(1, 4096 / n), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      const T* row = src + r * n;
      std::int64_t best = 0;
      for (std::int64_t i = 1; i < n; ++i) {
        const T v = row[i], w = row[best];
        if constexpr (std::is_floating_point_v<T>) {
          if (w != w) break;  // NaN already chosen
          if (v != v) { best = i; break; }
        }
        if (Largest ? v > w : v < w) best = i;
      }
      om[r] = best;
    }
  });
  out.copy_(out_moved.transpose(axis, -1));
  return keepdim ? out : out.squeeze(axis);
}
template <class T>
Tensor<std::int64_t> argmax(const Tensor<T>& x, int axis, bool keepdim = false) { return arg_extreme<T, true>(x, axis, keepdim, "argmax"); }
template <class T>
Tensor<std::int64_t> argmin(const Tensor<T>& x, int axis, bool keepdim = false) { return arg_extreme<T, false>(x, axis, keepdim, "argmin"); }

}  // namespace fiber
