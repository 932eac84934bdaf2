#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("gradcheck: sum, mean, var over axes") {
  auto x = rnd({3, 4, 5}, 31);
  CHECK_GRADCHECK([](Vars v) { return fiber::sum(v[0]); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::sum(v[0], {0, 2}); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::sum(v[0], 1, true); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::mean(v[0], -1); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::mean(v[0] * v[0], {1}); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::var(v[0], 2); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::var(v[0], {0, 1}, true, 0); }, x);
}

TEST_CASE("gradcheck: amax and amin (distinct values)") {
  auto x = rnd({4, 6}, 32);
  CHECK_GRADCHECK([](Vars v) { return fiber::amax(v[0], 1); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::amin(v[0], 0, true); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::amax(v[0]); }, x);
}

TEST_CASE("amax gives tied maxima an equal share") {
  Var<double> x(Tensor<double>::from_data({4}, {3, 1, 3, 2}), true);
  fiber::amax(x).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0.5, 0, 0.5, 0});
}
