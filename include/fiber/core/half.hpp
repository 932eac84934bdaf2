#pragma once
// IEEE 754 binary16 (fp16) and bfloat16 as 16-bit storage types, with conversions to and from
// float and double. Narrowing rounds to nearest, ties to even; overflow gives infinity; NaN stays
// NaN (quiet, sign and leading payload bits kept); subnormals are produced and read exactly.
// Widening (to float or double) is exact.
//
// double -> fp16/bf16 rounds once, directly: going through float would round twice and can be
// off by one unit in the last place for values near a halfway point.
#include <bit>
#include <cstdint>

#include "fiber/core/dtype.hpp"

namespace fiber {

namespace half_detail {

// Rounds the double `x` into a binary format with `ExpBits` exponent bits and `MantBits`
// explicit mantissa bits (fp16: 5, 10; bf16: 8, 7) and returns its bit pattern.
template <int ExpBits, int MantBits>
constexpr std::uint16_t narrow_from_double(double x) {
  const std::uint64_t d = std::bit_cast<std::uint64_t>(x);
  const std::uint16_t sign = std::uint16_t((d >> 63) << (ExpBits + MantBits));
  const std::uint64_t magnitude = d & 0x7fffffffffffffffull;
  constexpr std::uint16_t exp_all_ones = std::uint16_t(((1u << ExpBits) - 1) << MantBits);
  if (magnitude >= 0x7ff0000000000000ull) {
    if (magnitude == 0x7ff0000000000000ull) return sign | exp_all_ones;  // infinity
    // NaN: keep the leading payload bits, force the quiet bit so it cannot become infinity.
    const auto payload = std::uint16_t((magnitude >> (52 - MantBits)) & ((1u << MantBits) - 1));
    return sign | exp_all_ones | std::uint16_t(1u << (MantBits - 1)) | payload;
  }
  constexpr int bias = (1 << (ExpBits - 1)) - 1;
  const int biased = int(magnitude >> 52);
  if (biased == 0) return sign;  // double subnormals are far below any target subnormal
  // value = significand * 2^(exponent - 52), significand has 53 bits with the implicit one.
  const std::uint64_t significand = (magnitude & 0x000fffffffffffffull) | (1ull << 52);
  int target_exp = biased - 1023 + bias;  // biased exponent in the target format
  // Bits to drop: 52 - MantBits for a normal result, more for a subnormal one.
  int shift = 52 - MantBits + (target_exp < 1 ? 1 - target_exp : 0);
  if (shift > 60) return sign;  // below half of the smallest subnormal: rounds to zero
  std::uint64_t kept = significand >> shift;
  const std::uint64_t rest = significand & ((1ull << shift) - 1);
  const std::uint64_t halfway = 1ull << (shift - 1);
  if (rest > halfway || (rest == halfway && (kept & 1))) ++kept;
  if (target_exp < 1) {
    // Subnormal (kept < 2^MantBits) or, after rounding up, the smallest normal: the encoding
    // of both is just `kept`.
    return sign | std::uint16_t(kept);
  }
  if (kept >> (MantBits + 1)) {  // rounding carried into a new binade
    kept >>= 1;
    ++target_exp;
  }
  if (target_exp >= (1 << ExpBits) - 1) return sign | exp_all_ones;  // overflow: infinity
  return sign | std::uint16_t(target_exp << MantBits) |
         std::uint16_t(kept & ((1u << MantBits) - 1));
}

}  // namespace half_detail

// float -> fp16 bits, round to nearest even.
constexpr std::uint16_t float_to_half_bits(float value) {
  std::uint32_t f = std::bit_cast<std::uint32_t>(value);
  const std::uint16_t sign = std::uint16_t((f >> 16) & 0x8000u);
  f &= 0x7fffffffu;
  if (f >= 0x7f800000u) {  // infinity or NaN
    if (f == 0x7f800000u) return sign | 0x7c00u;
    return sign | 0x7e00u | std::uint16_t((f >> 13) & 0x3ffu);
  }
  if (f >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
  if (f >= 0x38800000u) {                       // normal fp16 range (>= 2^-14)
    // Rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
    const std::uint32_t rebiased = f - 0x38000000u;
    return sign | std::uint16_t((rebiased + 0x0fffu + ((rebiased >> 13) & 1u)) >> 13);
  }
  const std::uint32_t biased = f >> 23;
  if (biased < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself ties to 0)
  // Subnormal: value / 2^-24 = significand * 2^(biased - 126), shift in [14, 24].
  const std::uint32_t significand = (f & 0x7fffffu) | 0x800000u;
  const std::uint32_t shift = 126 - biased;
  std::uint32_t kept = significand >> shift;
  const std::uint32_t rest = significand & ((1u << shift) - 1);
  const std::uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (kept & 1u))) ++kept;
  return sign | std::uint16_t(kept);
}

// fp16 bits -> float, exact.
constexpr float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal: normalise the mantissa into a float's normal range.
  std::uint32_t e = 113;
  while (!(mantissa & 0x400u)) {
    mantissa <<= 1;
    --e;
  }
  return std::bit_cast<float>(sign | (e << 23) | ((mantissa & 0x3ffu) << 13));
}

// float -> bfloat16 bits, round to nearest even (bfloat16 is the top half of a float).
constexpr std::uint16_t float_to_bfloat16_bits(float value) {
  const std::uint32_t f = std::bit_cast<std::uint32_t>(value);
  if ((f & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((f >> 16) | 0x0040u);  // quiet NaN
  return std::uint16_t((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);
}

// bfloat16 bits -> float, exact.
constexpr float bfloat16_bits_to_float(std::uint16_t b) {
  return std::bit_cast<float>(std::uint32_t(b) << 16);
}

constexpr std::uint16_t double_to_half_bits(double value) {
  return half_detail::narrow_from_double<5, 10>(value);
}
constexpr std::uint16_t double_to_bfloat16_bits(double value) {
  return half_detail::narrow_from_double<8, 7>(value);
}

// A 2-byte floating-point value stored as its bit pattern; arithmetic goes through float.
// The three conversions define the format.
template <std::uint16_t (*FromFloat)(float), std::uint16_t (*FromDouble)(double), float (*ToFloat)(std::uint16_t)>
struct Float16Storage {
  std::uint16_t bits = 0;

  constexpr Float16Storage() = default;
  constexpr explicit Float16Storage(float value) : bits(FromFloat(value)) {}
  constexpr explicit Float16Storage(double value) : bits(FromDouble(value)) {}
  static constexpr Float16Storage from_bits(std::uint16_t b) {
    Float16Storage h;
    h.bits = b;
    return h;
  }
  constexpr operator float() const { return ToFloat(bits); }
};

using Half = Float16Storage<float_to_half_bits, double_to_half_bits, half_bits_to_float>;
using BFloat16 = Float16Storage<float_to_bfloat16_bits, double_to_bfloat16_bits, bfloat16_bits_to_float>;

static_assert(sizeof(Half) == 2 && sizeof(BFloat16) == 2);

template <> struct dtype_of<Half> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = DType::bf16; };

}  // namespace fiber
