#pragma once
// GELU, erf form (PyTorch's default): x/2 * (1 + erf(x/sqrt(2))), on xsimd packets or plain
// scalars (xsimd's functions take both). One formula for the elementwise gelu (ops::Gelu) and the
// GEMM's GELU epilogues, so a fused linear + GELU gives the same bits as gelu(linear(x)).
#include <xsimd/xsimd.hpp>

#include <numbers>
#include <type_traits>

namespace fiber::cpu {

namespace detail {
template <class V>
struct gelu_scalar {
  using type = typename V::value_type;
};
template <class V>
  requires std::is_arithmetic_v<V>
struct gelu_scalar<V> {
  using type = V;
};

// erf in float as PyTorch's vectorised CPU kernels compute it (Abramowitz & Stegun 7.1.26:
// |error| < 1.5e-7), so GELU matches PyTorch's CPU results closely; it is also twice as fast as
// xsimd's erf. Doubles keep the accurate xsimd::erf (PyTorch uses Sleef's there).
template <class V>
V gelu_erf(const V& x) {
  using S = typename gelu_scalar<V>::type;
  if constexpr (std::is_same_v<S, float>) {
    const V one(1.0f);
    const V t = one / xsimd::fma(xsimd::abs(x), V(0.3275911f), one);
    V r = V(1.061405429f);
    r = xsimd::fma(r, t, V(-1.453152027f));
    r = xsimd::fma(r, t, V(1.421413741f));
    r = xsimd::fma(r, t, V(-0.284496736f));
    r = xsimd::fma(r, t, V(0.254829592f));
    const V y = one - r * t * xsimd::exp(-x * x);
    return xsimd::copysign(y, x);
  } else {
    return xsimd::erf(x);
  }
}
}  // namespace detail

template <class V>
V gelu(const V& x) {
  using S = typename detail::gelu_scalar<V>::type;
  return x * S(0.5) * (V(S(1)) + detail::gelu_erf(x * S(std::numbers::sqrt2 / 2)));
}

}  // namespace fiber::cpu
