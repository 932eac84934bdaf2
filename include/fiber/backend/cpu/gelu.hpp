#pragma once
// GELU, erf form (PyTorch's default): x/2 * (1 + erf(x/sqrt(2))), on xsimd packets or plain
// scalars. One formula for the elementwise gelu (ops::Gelu) and the GEMM's GELU epilogues, so a
// fused linear + GELU gives the same bits as gelu(linear(x)).
#include <xsimd/xsimd.hpp>

#include <numbers>
#include <type_traits>

#include "fiber/backend/cpu/simd_math.hpp"

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
}  // namespace detail

template <class V>
V gelu(const V& x) {
  using S = typename detail::gelu_scalar<V>::type;
  const V half_x = x * S(0.5);
  if constexpr (std::is_same_v<S, float>) {
    // erf as PyTorch's vectorised CPU kernels approximate it in float (Abramowitz & Stegun 7.1.26,
    // |error| < 1.5e-7): for z = |x|/sqrt(2), erfc(z) = w = t R(t) exp(-z^2), t = 1/(1 + p z).
    // 1 + erf(x/sqrt(2)) is 2 - w for x >= 0 and w itself for x < 0: no cancellation in 1 - w
    // for negative x, and no copysign. Doubles keep the accurate xsimd::erf (PyTorch: Sleef).
    constexpr float p_over_sqrt2 = 0.3275911f * float(std::numbers::sqrt2 / 2);
    const V one(1.0f);
    const V t = one / xsimd::fma(xsimd::abs(x), V(p_over_sqrt2), one);
    V r(1.061405429f);
    r = xsimd::fma(r, t, V(-1.453152027f));
    r = xsimd::fma(r, t, V(1.421413741f));
    r = xsimd::fma(r, t, V(-0.284496736f));
    r = xsimd::fma(r, t, V(0.254829592f));
    const V w = r * t * simd_exp(-(half_x * x));  // exp(-x^2 / 2)
    if constexpr (std::is_arithmetic_v<V>) {
      return half_x * (x >= 0.0f ? 2.0f - w : w);
    } else {
      return half_x * xsimd::select(x >= V(0.0f), V(2.0f) - w, w);
    }
  } else {
    return half_x * (V(S(1)) + xsimd::erf(x * S(std::numbers::sqrt2 / 2)));
  }
}

}  // namespace fiber::cpu
