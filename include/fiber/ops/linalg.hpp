#pragma once
// Matrix products on tensors and Vars: matmul (PyTorch semantics: 1-D operands promoted, batch
// dimensions broadcast), bmm, and linear (x·Wᵀ + b with the bias fused into the GEMM's
// write-back). All go through fiber::cpu::gemm / gemm_batched; a transposed operand (a view whose
// last two strides are swapped) is passed with a transpose flag, not copied.
#include <cstdint>
#include <optional>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/backend/cpu/gemm.hpp"
#include "fiber/backend/cpu/gemm_batched.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber {

namespace detail {

// Rows of a [..., cols] tensor seen as a matrix: the product of all dims but the last (taken from
// the shape, so a zero-sized last dim does not turn it into 0 / 0).
inline std::int64_t leading_rows(const Shape& s) { return Shape(s.begin(), s.end() - 1).numel(); }

// Describes the last two dims (strides sr, sc) of a view, if the GEMM can read them in place.
inline std::optional<std::pair<std::int64_t, cpu::Trans>> gemm_layout(std::int64_t rows, std::int64_t cols,
                                                                      std::int64_t sr, std::int64_t sc) {
  if ((sc == 1 || cols == 1) && sr >= std::max<std::int64_t>(cols, 1)) return std::pair{sr, cpu::Trans::no};
  if ((sr == 1 || rows == 1) && sc >= std::max<std::int64_t>(rows, 1)) return std::pair{sc, cpu::Trans::yes};
  if (rows == 1 && cols == 1) return std::pair{std::int64_t(1), cpu::Trans::no};
  return std::nullopt;
}

// The shape [..., M, K] x [..., K, N] problem with broadcast batch dims.
struct MatmulPlan {
  Shape batch;           // broadcast batch shape
  std::int64_t M, N, K;
};

inline MatmulPlan plan_matmul(const Shape& a, const Shape& b, const char* op) {
  FIBER_CHECK(a.rank() >= 2 && b.rank() >= 2, op, ": operands need at least 2 dimensions, got ", a, " and ", b);
  const std::int64_t M = a[a.rank() - 2], K = a.back(), K2 = b[b.rank() - 2], N = b.back();
  FIBER_CHECK(K == K2, op, ": inner dimensions differ: ", a, " x ", b, " (", K, " vs ", K2, ")");
  Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  return {broadcast_shapes(ab, bb, op), M, N, K};
}

// out[batch..., M, N] = a[..., M, K] · b[..., K, N] (out contiguous, freshly allocated).
template <class T>
void batched_matmul_into(const Tensor<T>& out, Tensor<T> a, Tensor<T> b, const MatmulPlan& p) {
  // Nothing to write, or an empty sum (K = 0: zeros, as torch.matmul); zero-sized operands have
  // no usable leading dimension, so they never reach the GEMM.
  if (out.numel() == 0) return;
  if (p.K == 0) {
    out.fill_(T(0));
    return;
  }
  const int nb = p.batch.rank();
  // Operands whose matrices the GEMM cannot read in place are copied once.
  auto layout = [](Tensor<T>& t, std::int64_t rows, std::int64_t cols) {
    auto l = gemm_layout(rows, cols, t.stride(-2), t.stride(-1));
    if (!l) {
      t = t.contiguous();
      l = gemm_layout(rows, cols, t.stride(-2), t.stride(-1));
    }
    return *l;
  };
  const auto [lda, ta] = layout(a, p.M, p.K);
  const auto [ldb, tb] = layout(b, p.K, p.N);
  // Batch strides over the broadcast batch shape (0 where an operand is broadcast).
  auto batch_strides = [&](const Tensor<T>& t) {
    Shape s = Shape::filled(nb, 0);
    const int lead = nb - (t.dim() - 2);
    for (int i = 0; i < t.dim() - 2; ++i)
      if (t.size(i) != 1) s[lead + i] = t.stride(i);
    return s;
  };
  const Shape sa = batch_strides(a), sb = batch_strides(b);
  const Shape sc = [&] {
    Shape s = Shape::filled(nb, 0);
    for (int i = 0; i < nb; ++i) s[i] = out.stride(i);
    return s;
  }();
  // The longest suffix of batch dims that one strided batched call covers: each covered dim (of
  // size > 1) must continue the previous one's stride in all three operands.
  // The call steps by the strides of the innermost covered dim (`first`); `last` is the
  // outermost so far, which the next dim must continue.
  int split = nb, last = -1, first = -1;
  std::int64_t inner = 1;
  for (; split > 0; --split) {
    const int d = split - 1;
    if (p.batch[d] == 1) continue;
    if (last >= 0 && !(sa[d] == sa[last] * p.batch[last] && sb[d] == sb[last] * p.batch[last] &&
                       sc[d] == sc[last] * p.batch[last]))
      break;
    if (first < 0) first = d;
    last = d;
    inner *= p.batch[d];
  }
  const std::int64_t ra = first >= 0 ? sa[first] : 0, rb = first >= 0 ? sb[first] : 0, rc = first >= 0 ? sc[first] : 0;
  Shape outer_shape(p.batch.begin(), p.batch.begin() + split);
  const std::int64_t outer = outer_shape.numel();
  for (std::int64_t o = 0; o < outer; ++o) {
    std::int64_t oa = 0, ob = 0, oc = 0, rest = o;
    for (int d = split - 1; d >= 0; --d) {
      const std::int64_t i = rest % p.batch[d];
      rest /= p.batch[d];
      oa += i * sa[d];
      ob += i * sb[d];
      oc += i * sc[d];
    }
    cpu::gemm_batched<T>(ta, tb, inner, p.M, p.N, p.K, T(1), a.data() + oa, lda, ra, b.data() + ob, ldb, rb, T(0),
                         out.data() + oc, p.N, rc);
  }
}

}  // namespace detail

// matmul with PyTorch's rules: [..., M, K] x [..., K, N] -> [broadcast..., M, N]; a 1-D first
// operand is a row vector, a 1-D second operand a column vector, and the added dim is removed.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  FIBER_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: operands must have at least one dimension, got ", a.shape(),
              " and ", b.shape());
  const Tensor<T> a2 = a.dim() == 1 ? a.unsqueeze(0) : a;
  const Tensor<T> b2 = b.dim() == 1 ? b.unsqueeze(1) : b;
  const auto plan = detail::plan_matmul(a2.shape(), b2.shape(), "matmul");
  Shape out_shape = plan.batch;
  out_shape.push_back(plan.M);
  out_shape.push_back(plan.N);
  Tensor<T> out = Tensor<T>::empty(out_shape);
  if (b2.dim() == 2 && a2.dim() > 2 && a2.is_contiguous()) {
    // Shared right operand: one GEMM over all rows of a.
    const std::int64_t rows = detail::leading_rows(a2.shape());
    detail::batched_matmul_into(out.view({rows, plan.N}), a2.view({rows, plan.K}), b2,
                                detail::MatmulPlan{{}, rows, plan.N, plan.K});
  } else {
    detail::batched_matmul_into(out, a2, b2, plan);  // returns at once when out is empty
  }
  if (a.dim() == 1) out = out.squeeze(-2);
  if (b.dim() == 1) out = out.squeeze(-1);
  return out;
}

// Batched matrix product of [B, M, K] and [B, K, N].
template <class T>
Tensor<T> bmm(const Tensor<T>& a, const Tensor<T>& b) {
  FIBER_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0), "bmm: expects [B, M, K] and [B, K, N], got ",
              a.shape(), " and ", b.shape());
  return matmul(a, b);
}

// y = x·Wᵀ + b. x: [*, in], weight: [out, in], bias: [out] (undefined = none) -> [*, out].
template <class T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = {}) {
  FIBER_CHECK(x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1), "linear: input ", x.shape(),
              " and weight ", weight.shape(), " do not match (expects [*, in] and [out, in])");
  FIBER_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "linear: bias of shape ",
              bias.shape(), " for weight ", weight.shape());
  const std::int64_t in = weight.size(1), out_features = weight.size(0);
  const Tensor<T> xc = x.contiguous(), wc = weight.contiguous();
  const std::int64_t rows = detail::leading_rows(x.shape());
  Shape out_shape = x.shape();
  out_shape[out_shape.rank() - 1] = out_features;
  Tensor<T> out = Tensor<T>::empty(out_shape);
  if (out.numel() == 0) return out;
  // BLAS asks ld >= 1 even for an empty row (in = 0: the sum is empty and only the bias remains).
  const std::int64_t ld = std::max<std::int64_t>(in, 1);
  if (bias.defined()) {
    const Tensor<T> bc = bias.contiguous();
    cpu::gemm<T>(cpu::Trans::no, cpu::Trans::yes, rows, out_features, in, T(1), xc.data(), ld, wc.data(), ld, T(0),
                 out.data(), out_features, cpu::BiasEpilogue<T>{bc.data()});
  } else {
    cpu::gemm<T>(cpu::Trans::no, cpu::Trans::yes, rows, out_features, in, T(1), xc.data(), ld, wc.data(), ld, T(0),
                 out.data(), out_features);
  }
  return out;
}

// ---- Vars -------------------------------------------------------------------------------------
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
  return record("matmul", matmul(a.value(), b.value()), {&a, &b},
                [av = a.value(), bv = b.value()](const Tensor<T>& g, GradNeeds needs) {
                  std::vector<Tensor<T>> grads(2);
                  // dA = g·Bᵀ, dB = Aᵀ·g, each summed over the batch dims its operand was broadcast along.
                  if (needs[0]) grads[0] = sum_to_shape<T>(as_expr(matmul(g, bv.transpose(-1, -2))), av.shape());
                  if (needs[1]) {
                    if (bv.dim() == 2 && g.dim() > 2) {
                      const std::int64_t rows = detail::leading_rows(g.shape());
                      grads[1] = matmul(av.reshape({rows, av.size(-1)}).t(), g.reshape({rows, g.size(-1)}));
                    } else {
                      grads[1] = sum_to_shape<T>(as_expr(matmul(av.transpose(-1, -2), g)), bv.shape());
                    }
                  }
                  return grads;
                });
}

template <class T>
Var<T> bmm(const Var<T>& a, const Var<T>& b) {
  FIBER_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0), "bmm: expects [B, M, K] and [B, K, N], got ",
              a.shape(), " and ", b.shape());
  return matmul(a, b);
}

template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& weight, const Var<T>& bias = {}) {
  const bool has_bias = bias.defined();
  Tensor<T> out = linear(x.value(), weight.value(), has_bias ? bias.value() : Tensor<T>());
  auto backward = [xv = x.value(), wv = weight.value(), has_bias](const Tensor<T>& g, GradNeeds needs) {
    std::vector<Tensor<T>> grads(has_bias ? 3 : 2);
    const std::int64_t in = wv.size(1), out_features = wv.size(0);
    const std::int64_t rows = detail::leading_rows(g.shape());
    const Tensor<T> g2 = g.reshape({rows, out_features});
    if (needs[0]) grads[0] = matmul(g2, wv).reshape(xv.shape());               // dx = g·W
    if (needs[1]) grads[1] = matmul(g2.t(), xv.reshape({rows, in}));             // dW = gᵀ·x
    if (has_bias && needs[2]) grads[2] = sum(g2, 0);                             // db = Σ rows of g
    return grads;
  };
  if (has_bias) return record("linear", out, {&x, &weight, &bias}, backward);
  return record("linear", out, {&x, &weight}, backward);
}

}  // namespace fiber
