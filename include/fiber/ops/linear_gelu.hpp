#pragma once
// linear_gelu: gelu(x·Wᵀ + b) (erf GELU) with the bias and the GELU applied in the GEMM's
// write-back (backend/cpu/gemm_epilogue.hpp), a transformer MLP's first layer in one pass.
//   Var<float> h = linear_gelu(x, fc1_w, fc1_b);   // x: [*, in], W: [hidden, in], b: [hidden]
// The forward gives the same bits as gelu(linear(x, W, b)): the same GEMM, the same bias add and
// the same GELU source (backend/cpu/gelu.hpp).
//
// Backward: the Var forward also writes the pre-activation pre = x·Wᵀ + b (from the same
// epilogue, before the GELU), kept for the backward:
//   d pre = g * gelu'(pre),  dx = d pre·W,  dW = d preᵀ·x,  db = Σ rows of d pre.
// Without a graph to record (NoGrad, or no input requiring grad) nothing extra is written.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/backend/cpu/gemm.hpp"
#include "fiber/ops/linalg.hpp"

namespace fiber {

namespace detail {
// Epilogue: c += bias (when given), a copy of c to pre, then c = gelu(c). The add and the GELU
// are the same vector code as BiasEpilogue and GeluEpilogue. pre: [M, N] contiguous.
template <class T>
struct BiasKeepPreGelu {
  const T* bias;  // nullptr: no bias
  T* pre;         // nullptr: pre-activation not kept
  std::int64_t ld;
  void operator()(std::int64_t row, std::int64_t col, T* c, std::int64_t n) const {
    if (bias) cpu::BiasEpilogue<T>{bias}(row, col, c, n);
    if (pre) std::memcpy(pre + row * ld + col, c, n * sizeof(T));
    cpu::GeluEpilogue<T>{}(row, col, c, n);
  }
};

// y = gelu(x·Wᵀ + b); writes pre = x·Wᵀ + b too when `pre` is defined ([rows, out], contiguous).
template <class T>
Tensor<T> linear_gelu_forward(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const Tensor<T>& pre) {
  FIBER_CHECK(x.defined() && weight.defined(), "linear_gelu: undefined input or weight");
  FIBER_CHECK(x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1), "linear_gelu: input ", x.shape(),
              " and weight ", weight.shape(), " do not match (expects [*, in] and [out, in])");
  FIBER_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear_gelu: bias of shape ",
              bias.shape(), " for weight ", weight.shape(), " (expects [out])");
  const std::int64_t in = weight.size(1), out_features = weight.size(0);
  const Tensor<T> xc = x.contiguous(), wc = weight.contiguous();
  const std::int64_t rows = leading_rows(x.shape());
  Shape out_shape = x.shape();
  out_shape[out_shape.rank() - 1] = out_features;
  Tensor<T> out = Tensor<T>::empty(out_shape);
  if (out.numel() == 0) return out;
  const std::int64_t ld = std::max<std::int64_t>(in, 1);
  const Tensor<T> bc = bias.defined() ? bias.contiguous() : Tensor<T>();
  if (!pre.defined()) {
    // The same epilogues as gelu(linear(x)) would run, fused.
    if (bc.defined())
      cpu::gemm<T>(cpu::Trans::no, cpu::Trans::yes, rows, out_features, in, T(1), xc.data(), ld, wc.data(), ld, T(0),
                   out.data(), out_features, cpu::BiasGelu<T>{bc.data()});
    else
      cpu::gemm<T>(cpu::Trans::no, cpu::Trans::yes, rows, out_features, in, T(1), xc.data(), ld, wc.data(), ld, T(0),
                   out.data(), out_features, cpu::GeluEpilogue<T>{});
  } else {
    cpu::gemm<T>(cpu::Trans::no, cpu::Trans::yes, rows, out_features, in, T(1), xc.data(), ld, wc.data(), ld, T(0),
                 out.data(), out_features, BiasKeepPreGelu<T>{bc.defined() ? bc.data() : nullptr, pre.data(), out_features});
  }
  return out;
}
}  // namespace detail

// gelu(x·Wᵀ + b). x: [*, in], weight: [out, in], bias: [out] (undefined = none) -> [*, out].
template <class T>
Tensor<T> linear_gelu(const Tensor<T>& x, const Tensor<T>& weight, const std::type_identity_t<Tensor<T>>& bias = {}) {
  return detail::linear_gelu_forward(x, weight, bias, Tensor<T>());
}

template <class T>
Var<T> linear_gelu(const Var<T>& x, const Var<T>& weight, const std::type_identity_t<Var<T>>& bias = {}) {
  const bool has_bias = bias.defined();
  const bool recording = grad_enabled() && (x.requires_grad() || weight.requires_grad() || (has_bias && bias.requires_grad()));
  Tensor<T> pre;
  if (recording && x.dim() >= 1 && weight.dim() == 2) {
    Shape s = x.shape();
    s[s.rank() - 1] = weight.size(0);
    pre = Tensor<T>::empty(s);
  }
  Tensor<T> out = detail::linear_gelu_forward(x.value(), weight.value(), has_bias ? bias.value() : Tensor<T>(), pre);
  if (!recording) return Var<T>(std::move(out));
  // pre is the node's own scratch; x and the weight are the caller's and are version-checked.
  auto backward = [xs = save_for_backward(x.value()), ws = save_for_backward(weight.value()), pre,
                   has_bias](const Tensor<T>& g, GradNeeds needs) {
    std::vector<Tensor<T>> grads(has_bias ? 3 : 2);
    const Tensor<T>& xv = xs.get();
    const Tensor<T>& wv = ws.get();
    const std::int64_t in = wv.size(1), out_features = wv.size(0);
    const std::int64_t rows = detail::leading_rows(g.shape());
    const Tensor<T> gpre = as_expr(g) * ops::Gelu::d(as_expr(pre));           // d pre = g * gelu'(pre)
    const Tensor<T> g2 = gpre.reshape({rows, out_features});
    if (needs[0]) grads[0] = matmul(g2, wv).reshape(xv.shape());                // dx = d pre·W
    if (needs[1]) grads[1] = matmul(g2.t(), xv.reshape({rows, in}));              // dW = d preᵀ·x
    if (has_bias && needs[2]) grads[2] = sum(g2, 0);                              // db = Σ rows
    return grads;
  };
  if (has_bias) return record("linear_gelu", out, {&x, &weight, &bias}, backward);
  return record("linear_gelu", out, {&x, &weight}, backward);
}

}  // namespace fiber
