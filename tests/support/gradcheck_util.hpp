#pragma once
// CHECK_GRADCHECK(f, inputs...): runs fiber::gradcheck and reports the first mismatch.
#include <doctest/doctest.h>

#include "fiber/autograd/gradcheck.hpp"

#define CHECK_GRADCHECK(fn, ...)                                                 \
  do {                                                                           \
    auto fiber_gc_result = ::fiber::gradcheck((fn), {__VA_ARGS__});               \
    CHECK_MESSAGE(fiber_gc_result.ok, fiber_gc_result.message);                  \
  } while (0)

namespace fiber::test {
inline Tensor<double> rnd(const Shape& s, std::uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  return rand<double>(s, g, lo, hi);
}
}  // namespace fiber::test
