#pragma once
// exp and tanh on packets of float in fewer instructions than xsimd's, for the elementwise ops,
// GELU, sigmoid and softmax. A core that runs 512-bit operations at half rate (AMD Zen 4) spends
// about one cycle per multiply or FMA on a 16-float packet, so a chain with two or three
// transcendental functions is bound by those instructions, not by memory; each one saved counts.
//   simd_exp:  within 1.01 ulp of exp over the whole float range (xsimd::exp: 1 ulp, but it
//              overflows from 88.38 and flushes results below 2^-126 to 0); float packets of any
//              instruction set (vscalefps on AVX-512), xsimd::exp for doubles and scalars.
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
}  // namespace detail

template <class V>
V simd_exp(const V& x) {
  if constexpr (detail::is_avx512_float_packet<V>) {
#if XSIMD_WITH_AVX512F
    // exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 in two steps (ln 2 split into a
    // part that k multiplies exactly and a rest), |r| <= ln(2)/2; exp(r) = 1 + r + r^2 q(r) with q
    // of degree 4 (relative error 4e-9 on that interval). vscalefps multiplies by 2^k and gives
    // inf, denormals and 0 at the ends of the range; the clamp keeps r finite for +-inf.
    // max/min return their second operand when either is NaN: x goes second, so NaN propagates.
    const __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 q = _mm512_set1_ps(0x1.6a244cp-10f);
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0x1.1239d4p-7f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0x1.5558f2p-5f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0x1.555492p-3f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0x1.fffffcp-2f));
    const __m512 p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r), _mm512_set1_ps(1.0f));
    return V(_mm512_scalef_ps(p, k));
#endif
  } else if constexpr (detail::is_float_packet<V>) {
    // The same on narrower packets (AVX2, SSE2), without vscalefps: 2^k as two normal powers of
    // two, 2^(k >> 1) and 2^(k - (k >> 1)) (k in [-150, 128], each half in [-75, 64]), built in
    // the exponent bits; p 2^(k >> 1) is exact, the second product rounds once, to inf above
    // FLT_MAX and to the denormal below FLT_MIN. (xsimd::exp overflows from x = 88.38, where
    // exp(x) is still below FLT_MAX, and flushes results below FLT_MIN to 0.)
    using Int = xsimd::batch<std::int32_t, typename V::arch_type>;
    const V xc = xsimd::min(V(89.0f), xsimd::max(V(-104.0f), x));
    const V k = xsimd::nearbyint(xc * V(1.44269504088896341f));
    V r = xsimd::fnma(k, V(0.693359375f), xc);
    r = xsimd::fnma(k, V(-2.12194440e-4f), r);
    V q(0x1.6a244cp-10f);
    q = xsimd::fma(q, r, V(0x1.1239d4p-7f));
    q = xsimd::fma(q, r, V(0x1.5558f2p-5f));
    q = xsimd::fma(q, r, V(0x1.555492p-3f));
    q = xsimd::fma(q, r, V(0x1.fffffcp-2f));
    const V p = xsimd::fma(r * r, q, r) + V(1.0f);
    const Int ki = xsimd::to_int(k);
    const Int half = ki >> 1;
    const V first = xsimd::bitwise_cast<V>((half + Int(127)) << 23);
    const V second = xsimd::bitwise_cast<V>((ki - half + Int(127)) << 23);
    return (p * first) * second;
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
    p = xsimd::fma(p, s, V(0x1.d04232p-35f));
    p = xsimd::fma(p, s, V(-0x1.5b781ap-26f));
    p = xsimd::fma(p, s, V(0x1.76471ap-17f));
    p = xsimd::fma(p, s, V(0x1.96d79ep-9f));
    p = xsimd::fma(p, s, V(0x1.0bf5eap-3f));
    p = xsimd::fma(p, s, V(1.0f));
    V q(0x1.0afbb6p-12f);
    q = xsimd::fma(q, s, V(0x1.91544ap-6f));
    q = xsimd::fma(q, s, V(0x1.db5046p-2f));
    q = xsimd::fma(q, s, V(1.0f));
    const V r = (p * x) / q;
    return xsimd::select(xsimd::abs(x) >= V(9.0f), xsimd::copysign(V(1.0f), x), r);
  } else {
    return xsimd::tanh(x);
  }
}

}  // namespace fiber::cpu
