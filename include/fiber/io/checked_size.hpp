#pragma once
// Size arithmetic on values read from files: every sum and product is checked for overflow, and
// an overflow is a fiber::Error naming the file and the field, never a wrapped-around size.
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "fiber/core/error.hpp"

namespace fiber::io {

// a + b, or fiber::Error "<where>: <field>: size overflows 64 bits".
inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view where,
                                 std::string_view field) {
  std::uint64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) fail(where, ": ", field, ": size overflows 64 bits (", a, " + ", b, ")");
  return sum;
}

inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view where,
                                 std::string_view field) {
  std::uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) fail(where, ": ", field, ": size overflows 64 bits (", a, " * ", b, ")");
  return product;
}

// The element count of `shape`; every dimension must be >= 0 and the product must fit in
// int64 (and so in any byte count computed from it with checked_mul).
inline std::int64_t checked_numel(std::span<const std::int64_t> shape, std::string_view where,
                                  std::string_view field) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    FIBER_CHECK(d >= 0, where, ": ", field, ": dimension ", d, " is negative");
    if (__builtin_mul_overflow(n, d, &n)) fail(where, ": ", field, ": element count overflows 64 bits");
  }
  return n;
}

}  // namespace fiber::io
