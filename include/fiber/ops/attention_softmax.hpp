#pragma once
// attention_softmax: the softmax of attention scores with the scale, an additive bias and an
// additive mask applied in the same pass:
//   y = softmax(scale * scores + bias + mask, -1)
// bias and mask are optional (undefined = none) and broadcast to the scores' shape (NumPy rules,
// aligned on the right); neither is ever expanded in memory. The caller picks the view of the
// scores that makes ordinary broadcasting express the model:
//
//   // Swin window attention: scores [B*nW, h, N, N], relative position bias [h, N, N],
//   // shift mask [nW, N, N] (window index = batch index modulo nW): view the scores as
//   // [B, nW, h, N, N] and the mask as [nW, 1, N, N].
//   Var<float> p = attention_softmax(s.view({B, nW, h, N, N}), scale, rel_bias, mask.view({nW, 1, N, N}));
//   // Text self-attention: scores [B, h, L, L], additive padding mask [B, 1, 1, L].
//   Var<float> p = attention_softmax(s, scale, Var<float>(), text_mask);
//
// Backward: with gz = softmax_backward(y, g), d scores = scale * gz and d bias = gz summed over
// the dimensions the bias was broadcast along (the relative position bias table is trained); the
// mask gets no gradient. Only y is kept for the backward.
// A row whose every term is -inf gives NaN, as softmax does in PyTorch.
#include <cstdint>
#include <type_traits>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/backend/cpu/attention_softmax_kernel.hpp"
#include "fiber/core/strided_loop.hpp"
#include "fiber/expr/reduce.hpp"

namespace fiber {

namespace detail {
// An additive term made contiguous, with its strides broadcast over the scores' shape.
template <class T>
struct Addend {
  Tensor<T> t;
  Shape strides;  // over the scores' shape; 0 where broadcast
};

template <class T>
Addend<T> attention_addend(const Tensor<T>& a, const Shape& scores, const char* what) {
  if (!a.defined()) return {};
  FIBER_CHECK(a.dim() <= scores.rank(), "attention_softmax: ", what, " of shape ", a.shape(), " has more dimensions than the ",
              "scores of shape ", scores);
  for (int i = 0; i < a.dim(); ++i) {
    const std::int64_t have = a.size(i), want = scores[scores.rank() - a.dim() + i];
    FIBER_CHECK(have == want || have == 1, "attention_softmax: ", what, " of shape ", a.shape(), " does not broadcast to the ",
                "scores of shape ", scores, " (dimension ", i, " has size ", have, ", expected ", want,
                " or 1; view the scores so that the shapes align, e.g. [B, nW, heads, N, N] for a Swin mask [nW, 1, N, N])");
  }
  Addend<T> out{a.contiguous(), {}};
  out.strides = broadcast_strides(out.t.shape(), out.t.strides(), scores);
  return out;
}

template <class T>
Tensor<T> attention_softmax_forward(const Tensor<T>& scores, T scale, const Tensor<T>& bias, const Tensor<T>& mask) {
  static_assert(std::is_floating_point_v<T>, "attention_softmax: needs a floating-point tensor (float or double)");
  FIBER_CHECK(scores.defined(), "attention_softmax: undefined scores");
  FIBER_CHECK(scores.dim() >= 1, "attention_softmax: scores must have at least one dimension (the keys), got shape ",
              scores.shape());
  const Shape& s = scores.shape();
  const Addend<T> b = attention_addend(bias, s, "bias"), m = attention_addend(mask, s, "mask");
  const Tensor<T> x = scores.contiguous();
  Tensor<T> y = Tensor<T>::empty(s);
  const std::int64_t n = s.back(), rows = n == 0 ? 0 : s.numel() / n;
  // Rows walked over the scores' leading dims; operand 0 is the bias, 1 the mask.
  const Shape outer(s.begin(), s.end() - 1);
  auto lead = [&](const Addend<T>& a) { return a.t.defined() ? Shape(a.strides.begin(), a.strides.end() - 1) : Shape::filled(outer.rank(), 0); };
  const StridedLayout<2> L = coalesce<2>(outer, {lead(b), lead(m)});
  const std::int64_t b_inc = b.t.defined() ? b.strides.back() : 0, m_inc = m.t.defined() ? m.strides.back() : 0;
  const T* xp = x.data();
  T* yp = y.data();
  cpu::for_row_ranges(rows, n, [&](std::int64_t first, std::int64_t end) {
    std::int64_t r = first;
    for_each_run<2>(L, first, end, [&](const auto& off, std::int64_t count, const auto& inc) {
      for (std::int64_t t = 0; t < count; ++t, ++r) {
        const cpu::AddendRow<T> br{b.t.defined() ? b.t.data() + off[0] + t * inc[0] : nullptr, b_inc};
        const cpu::AddendRow<T> mr{m.t.defined() ? m.t.data() + off[1] + t * inc[1] : nullptr, m_inc};
        cpu::attention_softmax_row(xp + r * n, br, mr, yp + r * n, n, scale);
      }
    });
  });
  return y;
}

// gz = softmax_backward(y, g): rows of y and g, contiguous.
template <class T>
Tensor<T> attention_softmax_backward(const Tensor<T>& y, const Tensor<T>& g) {
  const Tensor<T> gc = g.contiguous();
  Tensor<T> gz = Tensor<T>::empty(y.shape());
  const std::int64_t n = y.size(-1), rows = n == 0 ? 0 : y.numel() / n;
  cpu::for_row_ranges(rows, n, [&](std::int64_t first, std::int64_t end) {
    for (std::int64_t r = first; r < end; ++r)
      cpu::detail::softmax_backward_row<T, false>(y.data() + r * n, gc.data() + r * n, gz.data() + r * n, n);
  });
  return gz;
}
}  // namespace detail

// y = softmax(scale * scores + bias + mask) along the last axis; bias and mask may be undefined.
template <class T>
Tensor<T> attention_softmax(const Tensor<T>& scores, std::type_identity_t<T> scale,
                            const std::type_identity_t<Tensor<T>>& bias = {}, const std::type_identity_t<Tensor<T>>& mask = {}) {
  return detail::attention_softmax_forward(scores, scale, bias, mask);
}

// The same with gradients for the scores and (when it is a Var that requires grad) the bias.
template <class T>
Var<T> attention_softmax(const Var<T>& scores, std::type_identity_t<T> scale, const std::type_identity_t<Var<T>>& bias = {},
                         const std::type_identity_t<Tensor<T>>& mask = {}) {
  const bool has_bias = bias.defined();
  Tensor<T> y = detail::attention_softmax_forward(scores.value(), scale, has_bias ? bias.value() : Tensor<T>(), mask);
  if (!needs_graph(scores, bias)) return Var<T>(std::move(y));
  auto backward = [ys = save_for_backward(y), scale, bias_shape = has_bias ? bias.shape() : Shape{}, has_bias](const Tensor<T>& g, GradNeeds needs) {
    std::vector<Tensor<T>> grads(has_bias ? 2 : 1);
    Tensor<T> gz = detail::attention_softmax_backward(ys.get(), g);
    if (has_bias && needs[1]) grads[1] = sum_to_shape<T>(as_expr(gz), bias_shape);
    if (needs[0]) grads[0] = gz.assign(as_expr(gz) * scale);  // in place: same layout
    return grads;
  };
  if (has_bias) return record("attention_softmax", y, {&scores, &bias}, backward);
  return record("attention_softmax", y, {&scores}, backward);
}

}  // namespace fiber
