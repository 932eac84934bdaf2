#pragma once
// exp and tanh on packets of float in fewer instructions than xsimd's, for the elementwise ops,
// GELU, sigmoid and softmax. A core that runs 512-bit operations at half rate (AMD Zen 4) spends
// about one cycle per multiply or FMA on a 16-float packet, so a chain with two or three
// transcendental functions is bound by those instructions, not by memory; each one saved counts.
//   simd_exp:  within 1.01 ulp of exp over the whole float range (xsimd::exp: 1 ulp, but it
//              overflows from 88.38 and flushes results below 2^-126 to 0); float packets of any
//              instruction set, one body (vscalefps and explicit FMAs on AVX-512), xsimd::exp for
//              doubles and scalars.
//   simd_tanh: within 5 ulp of tanh (3e-7 relative; xsimd::tanh: 1.4 ulp, PyTorch's Sleef: 1 ulp),
//              any instruction set; 1.7x faster than xsimd::tanh on AVX-512.
// Doubles and plain scalars keep xsimd's functions. tests/backend/test_simd_math.cpp checks the
// bounds over 8 million floats covering every exponent (a one-off sweep of 2.4 billion floats found
// exp's largest error, 1.009 ulp); the polynomials come from tests/reference/fit_simd_math.py.
#include <xsimd/xsimd.hpp>

#include <cstdint>
#include <type_traits>

#if XSIMD_WITH_AVX512F
#include <immintrin.h>
#endif

namespace fiber::cpu {

namespace detail {
template <class V>
inline constexpr bool is_float_packet = [] {
  if constexpr (requires { typename V::value_type; typename V::arch_type; })
    return std::is_same_v<typename V::value_type, float>;
  return false;
}();

template <class V>
inline constexpr bool is_avx512_float_packet = [] {
#if XSIMD_WITH_AVX512F
  if constexpr (is_float_packet<V>) return std::is_base_of_v<xsimd::avx512f, typename V::arch_type>;
#endif
  return false;
}();

// a * b + c and c - a * b rounded once. xsimd 8.1 has no AVX-512 fma: its generic one is a * b + c,
// fused only where the host's compiler contracts it (-ffp-contract), so a header-only library
// names the instruction itself. (GCC 12 at -O2 emits the same AVX-512 code for simd_exp and
// simd_tanh as with the intrinsics written out: results unchanged.)
template <class V>
V fused_multiply_add(const V& a, const V& b, const V& c) {
#if XSIMD_WITH_AVX512F
  if constexpr (is_avx512_float_packet<V>) return V(_mm512_fmadd_ps(a, b, c));
#endif
  return xsimd::fma(a, b, c);
}

template <class V>
V fused_negative_multiply_add(const V& a, const V& b, const V& c) {
#if XSIMD_WITH_AVX512F
  if constexpr (is_avx512_float_packet<V>) return V(_mm512_fnmadd_ps(a, b, c));
#endif
  return xsimd::fnma(a, b, c);
}

// p 2^k for p in [0.7, 1.42] and integral k in [-150, 128], rounded once: to inf above FLT_MAX, to
// the denormal below FLT_MIN. AVX-512 has vscalefps; elsewhere 2^k is two normal powers of two,
// 2^(k >> 1) and 2^(k - (k >> 1)) (each exponent in [-75, 64]) built in the exponent bits, and
// p 2^(k >> 1) is exact, so only the second product rounds.
template <class V>
V scale_by_power_of_two(const V& p, const V& k) {
#if XSIMD_WITH_AVX512F
  if constexpr (is_avx512_float_packet<V>) return V(_mm512_scalef_ps(p, k));
#endif
  using Int = xsimd::batch<std::int32_t, typename V::arch_type>;
  const Int ki = xsimd::to_int(k);
  const Int half = ki >> 1;
  const V first = xsimd::bitwise_cast<V>((half + Int(127)) << 23);
  const V second = xsimd::bitwise_cast<V>((ki - half + Int(127)) << 23);
  return (p * first) * second;
}
}  // namespace detail

template <class V>
V simd_exp(const V& x) {
  if constexpr (detail::is_float_packet<V>) {
    // exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 in two steps (ln 2 split into a
    // part that k multiplies exactly and a rest), |r| <= ln(2)/2; exp(r) = 1 + r + r^2 q(r) with q
    // of degree 4 (relative error 4e-9 on that interval); then the scaling by 2^k, which gives
    // inf, denormals and 0 at the ends of the range. The clamp keeps r finite for +-inf; min and
    // max return their second operand when either is NaN: x goes second, so NaN propagates.
    // (xsimd::exp overflows from x = 88.38, where exp(x) is still below FLT_MAX, and flushes
    // results below FLT_MIN to 0.)
    using detail::fused_multiply_add, detail::fused_negative_multiply_add;
    const V xc = xsimd::min(V(89.0f), xsimd::max(V(-104.0f), x));
    const V k = xsimd::nearbyint(xc * V(1.44269504088896341f));
    V r = fused_negative_multiply_add(k, V(0.693359375f), xc);
    r = fused_negative_multiply_add(k, V(-2.12194440e-4f), r);
    V q(0x1.6a244cp-10f);
    q = fused_multiply_add(q, r, V(0x1.1239d4p-7f));
    q = fused_multiply_add(q, r, V(0x1.5558f2p-5f));
    q = fused_multiply_add(q, r, V(0x1.555492p-3f));
    q = fused_multiply_add(q, r, V(0x1.fffffcp-2f));
    const V p = fused_multiply_add(r * r, q, r) + V(1.0f);
    return detail::scale_by_power_of_two(p, k);
  } else {
    return xsimd::exp(x);
  }
}

template <class V>
V simd_tanh(const V& x) {
  if constexpr (detail::is_float_packet<V>) {
    // tanh(x) = x P(x^2) / Q(x^2), P of degree 6 and Q of degree 3, fitted on [0, 9] to relative
    // error 7e-9. From |x| = 9 on, tanh rounds to +-1 in float and the result is selected as
    // exactly that (the rational alone can land an ulp or three below, as it did in sanitizer
    // builds), so what P and Q give there, inf or NaN, is never used. |NaN| >= 9 is false: NaN
    // stays NaN through r.
    const V s = x * x;
    V p(-0x1.7e4dbap-44f);
    p = detail::fused_multiply_add(p, s, V(0x1.d04232p-35f));
    p = detail::fused_multiply_add(p, s, V(-0x1.5b781ap-26f));
    p = detail::fused_multiply_add(p, s, V(0x1.76471ap-17f));
    p = detail::fused_multiply_add(p, s, V(0x1.96d79ep-9f));
    p = detail::fused_multiply_add(p, s, V(0x1.0bf5eap-3f));
    p = detail::fused_multiply_add(p, s, V(1.0f));
    V q(0x1.0afbb6p-12f);
    q = detail::fused_multiply_add(q, s, V(0x1.91544ap-6f));
    q = detail::fused_multiply_add(q, s, V(0x1.db5046p-2f));
    q = detail::fused_multiply_add(q, s, V(1.0f));
    const V r = (p * x) / q;
    return xsimd::select(xsimd::abs(x) >= V(9.0f), xsimd::copysign(V(1.0f), x), r);
  } else {
    return xsimd::tanh(x);
  }
}

}  // namespace fiber::cpu
