#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "test_util.hpp"

using fiber::Tensor;

TEST_CASE("a chain of elementwise operations runs as one pass with one allocation (the result)") {
  fiber::Generator g(3);
  auto x = fiber::randn<float>({64, 512}, g);
  auto w = fiber::randn<float>({512}, g);
  auto b = fiber::randn<float>({64, 1}, g);
  const auto before = fiber::allocation_stats().allocations.load();
  // Seven operations: mul, add, gelu, mul, tanh, sub, exp.
  auto expr = fiber::exp(fiber::gelu(x * w + b) * 0.5 - fiber::tanh(x));
  CHECK(fiber::allocation_stats().allocations.load() == before);  // building allocates no tensor
  Tensor<float> y = expr;
  CHECK(fiber::allocation_stats().allocations.load() == before + 1);
  // The same chain op by op, each step materialised, for the values.
  Tensor<float> s1 = x * w;
  Tensor<float> s2 = s1 + b;
  Tensor<float> s3 = fiber::gelu(s2);
  Tensor<float> s4 = s3 * 0.5;
  Tensor<float> s5 = fiber::tanh(x);
  Tensor<float> s6 = s4 - s5;
  Tensor<float> s7 = fiber::exp(s6);
  // The fused pass may contract x*w + b into one FMA (the compiler's choice), so allow rounding.
  FIBER_CHECK_CLOSE(y, s7, 1e-6, 1e-7);
  CHECK(fiber::allocation_stats().allocations.load() == before + 8);
}
