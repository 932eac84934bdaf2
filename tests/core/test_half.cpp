// fp16 / bfloat16 conversions (core/half.hpp) against three independent references: torch's own
// conversions (fixture half_conversions.safetensors), an exact nearest-even search over every
// finite 16-bit value, and the compiler's _Float16 where it has one.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "fiber/core/half.hpp"
#include "fiber/io/open_checkpoint.hpp"

namespace {

using fiber::BFloat16;
using fiber::Half;

// Every finite non-negative value of a 16-bit format, ascending, plus infinity as the value one
// binade above the largest finite (what round-to-nearest-even overflows to).
struct Format {
  std::vector<double> values;
  std::vector<std::uint16_t> bits;
};

template <class Widen>
Format finite_values(std::uint16_t infinity_bits, double infinity_as, Widen widen) {
  Format f;
  for (std::uint32_t b = 0; b < infinity_bits; ++b) {
    f.values.push_back(double(widen(std::uint16_t(b))));
    f.bits.push_back(std::uint16_t(b));
  }
  f.values.push_back(infinity_as);
  f.bits.push_back(infinity_bits);
  return f;
}

const Format& half_format() {
  static const Format f = finite_values(0x7c00, 65536.0, fiber::half_bits_to_float);
  return f;
}
const Format& bf16_format() {
  static const Format f = finite_values(0x7f80, std::ldexp(1.0, 128), fiber::bfloat16_bits_to_float);
  return f;
}

// Exact round-to-nearest-even by search: the differences below are exact in double because both
// neighbours lie within a factor of two of x (or x is tiny and the lower neighbour is zero).
std::uint16_t reference_round(double x, const Format& f, std::uint16_t sign_bit) {
  if (std::isnan(x)) return 0;
  const std::uint16_t sign = std::signbit(x) ? sign_bit : 0;
  const double a = std::fabs(x);
  if (a >= f.values.back()) return sign | f.bits.back();
  const auto hi = std::size_t(std::upper_bound(f.values.begin(), f.values.end(), a) - f.values.begin());
  const std::size_t lo = hi - 1;
  const double down = a - f.values[lo], up = f.values[hi] - a;
  if (down < up) return sign | f.bits[lo];
  if (up < down) return sign | f.bits[hi];
  return sign | ((f.bits[lo] & 1) ? f.bits[hi] : f.bits[lo]);
}

bool is_half_nan(std::uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
bool is_bf16_nan(std::uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f); }

fiber::io::Checkpoint fixture() {
  return fiber::io::open_checkpoint(std::string(FIBER_TEST_DATA_DIR) + "/checkpoints/half_conversions.safetensors");
}

}  // namespace

TEST_CASE("widening every fp16 and bf16 value matches torch bit for bit") {
  auto ck = fixture();
  const auto f16 = ck.record("all_f16_as_f32").to_vector<float>();
  const auto bf16 = ck.record("all_bf16_as_f32").to_vector<float>();
  REQUIRE(f16.size() == 65536);
  REQUIRE(bf16.size() == 65536);
  int mismatches = 0;
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float ours = fiber::half_bits_to_float(std::uint16_t(b));
    if (std::isnan(f16[b])) mismatches += !(std::isnan(ours) && std::signbit(ours) == std::signbit(f16[b]));
    else mismatches += std::bit_cast<std::uint32_t>(ours) != std::bit_cast<std::uint32_t>(f16[b]);
    const float ours_b = fiber::bfloat16_bits_to_float(std::uint16_t(b));
    if (std::isnan(bf16[b])) mismatches += !std::isnan(ours_b);
    else mismatches += std::bit_cast<std::uint32_t>(ours_b) != std::bit_cast<std::uint32_t>(bf16[b]);
  }
  CHECK(mismatches == 0);
}

TEST_CASE("float to fp16 and bf16 rounds like torch on specials, midpoints and random values") {
  auto ck = fixture();
  const auto input = ck.record("input").to_vector<float>();
  const auto f16 = ck.record("to_f16_bits").to_vector<std::int16_t>();
  const auto bf16 = ck.record("to_bf16_bits").to_vector<std::int16_t>();
  REQUIRE(input.size() > 4000);
  int f16_bad = 0, bf16_bad = 0;
  for (std::size_t i = 0; i < input.size(); ++i) {
    const auto want = std::uint16_t(f16[i]), want_b = std::uint16_t(bf16[i]);
    const std::uint16_t got = fiber::float_to_half_bits(input[i]), got_b = fiber::float_to_bfloat16_bits(input[i]);
    f16_bad += is_half_nan(want) ? !is_half_nan(got) : got != want;
    bf16_bad += is_bf16_nan(want_b) ? !is_bf16_nan(got_b) : got_b != want_b;
  }
  CHECK(f16_bad == 0);
  CHECK(bf16_bad == 0);
}

TEST_CASE("narrowing agrees with an exact nearest-even search") {
  std::mt19937_64 rng(11);
  int bad_f = 0, bad_d = 0, bad_bf = 0, bad_bd = 0;
  for (int i = 0; i < 200000; ++i) {
    // Random bit patterns cover every binade, subnormals and overflow.
    const float x = std::bit_cast<float>(std::uint32_t(rng()));
    if (std::isnan(x)) continue;
    bad_f += fiber::float_to_half_bits(x) != reference_round(x, half_format(), 0x8000);
    bad_bf += fiber::float_to_bfloat16_bits(x) != reference_round(x, bf16_format(), 0x8000);
    // Doubles just off a float's value: rounding through float first would round twice.
    const double d = double(x) * (1.0 + std::ldexp(double(std::int64_t(rng() % 2001) - 1000), -40));
    if (std::isnan(d) || std::isinf(d)) continue;
    bad_d += fiber::double_to_half_bits(d) != reference_round(d, half_format(), 0x8000);
    bad_bd += fiber::double_to_bfloat16_bits(d) != reference_round(d, bf16_format(), 0x8000);
  }
  CHECK(bad_f == 0);
  CHECK(bad_d == 0);
  CHECK(bad_bf == 0);
  CHECK(bad_bd == 0);
}

TEST_CASE("double narrowing rounds once where float would round twice") {
  // 1 + 2^-11 is the fp16 midpoint between 1 and 1 + 2^-10; a hair above it must round up, but
  // through float (which rounds the hair away) ties-to-even would give 1.
  const double above_midpoint = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  CHECK(fiber::double_to_half_bits(above_midpoint) == 0x3c01);
  CHECK(fiber::float_to_half_bits(float(above_midpoint)) == 0x3c00);
  const double above_bf16_midpoint = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40);
  CHECK(fiber::double_to_bfloat16_bits(above_bf16_midpoint) == 0x3f81);
}

TEST_CASE("fp16 round trip, specials and NaN") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto h = std::uint16_t(b);
    const float f = fiber::half_bits_to_float(h);
    if (is_half_nan(h)) {
      CHECK(std::isnan(f));
      CHECK(is_half_nan(fiber::float_to_half_bits(f)));
      CHECK(is_half_nan(fiber::double_to_half_bits(double(f))));
      continue;
    }
    REQUIRE(fiber::float_to_half_bits(f) == h);
    REQUIRE(fiber::double_to_half_bits(double(f)) == h);
  }
  CHECK(fiber::float_to_half_bits(65504.0f) == 0x7bff);
  CHECK(fiber::float_to_half_bits(65519.996f) == 0x7bff);
  CHECK(fiber::float_to_half_bits(65520.0f) == 0x7c00);   // halfway to 2^16: ties to even = infinity
  CHECK(fiber::float_to_half_bits(-1e9f) == 0xfc00);
  CHECK(fiber::float_to_half_bits(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  CHECK(fiber::float_to_half_bits(std::ldexp(1.0f, -25)) == 0x0000);  // exactly half of it: to even (0)
  CHECK(fiber::float_to_half_bits(std::ldexp(1.5f, -25)) == 0x0001);
  CHECK(fiber::float_to_half_bits(-0.0f) == 0x8000);
  CHECK(fiber::float_to_bfloat16_bits(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(fiber::float_to_bfloat16_bits(3.4028235e38f) == 0x7f80);  // rounds up past the largest bf16
  CHECK(is_bf16_nan(fiber::float_to_bfloat16_bits(std::bit_cast<float>(0x7f800001u))));  // payload only in low bits
  CHECK(is_half_nan(fiber::float_to_half_bits(std::bit_cast<float>(0x7f800001u))));
  CHECK(fiber::float_to_bfloat16_bits(std::bit_cast<float>(0x00000001u)) == 0x0000);  // float subnormal
}

TEST_CASE("Half and BFloat16 value types") {
  constexpr Half h(0.5f);
  static_assert(h.bits == 0x3800);
  static_assert(float(Half(1.0)) == 1.0f);
  static_assert(float(BFloat16(1.0f)) == 1.0f);
  static_assert(fiber::dtype_of_v<Half> == fiber::DType::f16);
  static_assert(fiber::dtype_of_v<BFloat16> == fiber::DType::bf16);
  CHECK(float(Half::from_bits(0x3c00)) == 1.0f);
  CHECK(float(BFloat16::from_bits(0xc000)) == -2.0f);
}

#if defined(__FLT16_MAX__)
TEST_CASE("conversions agree with the compiler's _Float16") {
  std::mt19937_64 rng(5);
  int bad = 0;
  for (int i = 0; i < 200000; ++i) {
    const double d = std::ldexp(double(std::int64_t(rng() >> 11)) / double(1ull << 53), int(rng() % 60) - 40) *
                     ((rng() & 1) ? -1 : 1);
    bad += std::bit_cast<std::uint16_t>(static_cast<_Float16>(d)) != fiber::double_to_half_bits(d);
    const float f = float(d);
    bad += std::bit_cast<std::uint16_t>(static_cast<_Float16>(f)) != fiber::float_to_half_bits(f);
  }
  CHECK(bad == 0);
}
#endif
