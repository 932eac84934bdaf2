#pragma once
// layer_norm, as torch.nn.functional.layer_norm: normalises over the trailing dimensions given by
// `normalized_shape` (or by their count, LastDims{k}) with the biased variance,
//   y = (x - mean) / sqrt(var + eps) * weight + bias,
// weight and bias optional. They may have normalized_shape or any shape that broadcasts to it
// (e.g. [C] for normalized_shape [H, C]); PyTorch accepts only normalized_shape itself.
// x - mean is computed as (x - x0) - (mean - x0), x0 the row's first element, which keeps float32
// accurate for rows with a large mean and a small spread.
//
// Backward (the standard formulas with the saved mean and rstd = 1/sqrt(var + eps)):
//   xhat = (x - mean) * rstd,  gw = g * weight
//   dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat))   (means over the normalised dims)
//   dweight = sum of g * xhat,  dbias = sum of g            (over everything else)
#include <cstdint>
#include <type_traits>

#include "fiber/autograd/var.hpp"
#include "fiber/backend/cpu/layer_norm_kernel.hpp"
#include "fiber/expr/reduce.hpp"

namespace fiber {

// The number of trailing dimensions to normalise over: layer_norm(x, LastDims{1}) normalises
// along the last axis. An enum, not a struct, so that a braced shape (layer_norm(x, {512})) can
// only mean normalized_shape.
enum class LastDims : int {};

namespace detail {

// Checks the operands; returns the elements per normalised row.
inline std::int64_t check_layer_norm(const Shape& x, const Shape& normalized, const Shape* weight, const Shape* bias,
                                     double eps) {
  const char* op = "layer_norm";
  FIBER_CHECK(normalized.rank() >= 1, op, ": normalized_shape must have at least one dimension (input ", x, ")");
  bool match = normalized.rank() <= x.rank();
  for (int i = 0; match && i < normalized.rank(); ++i) match = x[x.rank() - normalized.rank() + i] == normalized[i];
  FIBER_CHECK(match, op, ": normalized_shape ", normalized, " does not match the last dimensions of input shape ", x);
  FIBER_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps, " (input ", x, ")");
  for (auto [name, s] : {std::pair{"weight", weight}, std::pair{"bias", bias}}) {
    if (!s) continue;
    bool fits = s->rank() <= normalized.rank();
    for (int i = 0; fits && i < s->rank(); ++i) {
      const std::int64_t have = (*s)[s->rank() - 1 - i], want = normalized[normalized.rank() - 1 - i];
      fits = have == want || have == 1;
    }
    FIBER_CHECK(fits, op, ": ", name, " of shape ", *s, " does not broadcast to normalized_shape ", normalized,
                " (input ", x, ")");
  }
  return normalized.numel();
}

inline Shape last_dims(const Shape& x, LastDims dims) {
  const int count = static_cast<int>(dims);
  FIBER_CHECK(count >= 1 && count <= x.rank(), "layer_norm: LastDims{", count, "} is out of range for input shape ",
              x, " (1 to ", x.rank(), ")");
  return Shape(x.end() - count, x.end());
}

// A parameter broadcast to normalized_shape, contiguous, or undefined.
template <class T>
Tensor<T> full_parameter(const Tensor<T>& p, const Shape& normalized) {
  if (!p.defined()) return {};
  if (p.shape() == normalized) return p.contiguous();
  return p.expand(normalized).contiguous();
}

template <class T>
struct LayerNormResult {
  Tensor<T> x, y;          // x: the input, contiguous
  Tensor<T> centre, rstd;  // per row: mean - (the row's first element), 1 / sqrt(var + eps)
  Tensor<T> weight;        // the weight broadcast to normalized_shape (undefined without one)
};

template <class T>
LayerNormResult<T> layer_norm_forward(const Tensor<T>& x, const Shape& normalized, const Tensor<T>& weight,
                                      const Tensor<T>& bias, double eps) {
  static_assert(std::is_floating_point_v<T>, "layer_norm: needs a floating-point tensor (float or double)");
  const Shape ws = weight.defined() ? weight.shape() : Shape{}, bs = bias.defined() ? bias.shape() : Shape{};
  const std::int64_t n = check_layer_norm(x.shape(), normalized, weight.defined() ? &ws : nullptr,
                                          bias.defined() ? &bs : nullptr, eps);
  const std::int64_t rows = n == 0 ? 0 : x.numel() / n;
  LayerNormResult<T> r;
  r.weight = full_parameter(weight, normalized);
  const Tensor<T> b = full_parameter(bias, normalized);
  r.x = x.contiguous();
  r.y = Tensor<T>::empty(x.shape());
  r.centre = Tensor<T>::empty({rows});
  r.rstd = Tensor<T>::empty({rows});
  cpu::layer_norm_forward(r.x.data(), r.weight.defined() ? r.weight.data() : nullptr, b.defined() ? b.data() : nullptr,
                          r.y.data(), r.centre.data(), r.rstd.data(), rows, n, static_cast<T>(eps));
  return r;
}

}  // namespace detail

// ---- tensors ---------------------------------------------------------------------------------
template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, const Shape& normalized_shape, const std::type_identity_t<Tensor<T>>& weight = {},
                     const std::type_identity_t<Tensor<T>>& bias = {}, double eps = 1e-5) {
  return detail::layer_norm_forward(x, normalized_shape, weight, bias, eps).y;
}
template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, LastDims dims, const std::type_identity_t<Tensor<T>>& weight = {},
                     const std::type_identity_t<Tensor<T>>& bias = {}, double eps = 1e-5) {
  return layer_norm(x, detail::last_dims(x.shape(), dims), weight, bias, eps);
}

// ---- Vars ------------------------------------------------------------------------------------
// weight and bias may be undefined Vars (Var<T>()) or plain tensors (then they get no gradient).
template <class T>
Var<T> layer_norm(const Var<T>& x, const Shape& normalized_shape, const std::type_identity_t<Var<T>>& weight = {},
                  const std::type_identity_t<Var<T>>& bias = {}, double eps = 1e-5) {
  const Tensor<T> wv = weight.defined() ? weight.value() : Tensor<T>(), bv = bias.defined() ? bias.value() : Tensor<T>();
  detail::LayerNormResult<T> r = detail::layer_norm_forward(x.value(), normalized_shape, wv, bv, eps);
  if (!needs_graph(x, weight, bias)) return Var<T>(std::move(r.y));
  // Undefined parameters stand in as constants, so the node always has three inputs.
  const Var<T> none(Tensor<T>::empty({0}));
  const Var<T>& w = weight.defined() ? weight : none;
  const Var<T>& b = bias.defined() ? bias : none;
  return record("layer_norm", r.y, {&x, &w, &b},
                // x and the weight may be the caller's tensors (centre and rstd are the node's own).
                [xs = save_for_backward(r.x), centre = r.centre, rstd = r.rstd, ws_full = save_for_backward(r.weight),
                 ws = wv.defined() ? wv.shape() : Shape{}, bs = bv.defined() ? bv.shape() : Shape{},
                 normalized = normalized_shape, n = normalized_shape.numel()](const Tensor<T>& g, GradNeeds needs) {
                  std::vector<Tensor<T>> grads(3);
                  const Tensor<T>& xv = xs.get();
                  const Tensor<T>& wfull = ws_full.get();
                  const Tensor<T> gc = g.contiguous();
                  const std::int64_t rows = n == 0 ? 0 : xv.numel() / n;
                  // dx, and the parameter gradients as [n] column sums, in one pass over x and g.
                  Tensor<T> dw = needs[1] ? Tensor<T>::empty({n}) : Tensor<T>();
                  Tensor<T> db = needs[2] ? Tensor<T>::empty({n}) : Tensor<T>();
                  if (needs[0]) grads[0] = Tensor<T>::empty(xv.shape());
                  cpu::layer_norm_backward(xv.data(), gc.data(), wfull.defined() ? wfull.data() : nullptr,
                                           centre.data(), rstd.data(), needs[0] ? grads[0].data() : nullptr,
                                           needs[1] ? dw.data() : nullptr, needs[2] ? db.data() : nullptr, rows, n);
                  // A weight or bias that was broadcast to normalized_shape gets the sum over the copies.
                  if (needs[1]) grads[1] = sum_to_shape<T>(as_expr(dw.reshape(normalized)), ws);
                  if (needs[2]) grads[2] = sum_to_shape<T>(as_expr(db.reshape(normalized)), bs);
                  return grads;
                });
}
template <class T>
Var<T> layer_norm(const Var<T>& x, LastDims dims, const std::type_identity_t<Var<T>>& weight = {},
                  const std::type_identity_t<Var<T>>& bias = {}, double eps = 1e-5) {
  return layer_norm(x, detail::last_dims(x.shape(), dims), weight, bias, eps);
}

}  // namespace fiber
