// pad (constant): values by hand, PyTorch's pair order (last dim first), cropping, gradcheck, errors.
#include <doctest/doctest.h>

#include "fiber/ops/pad.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("pad: values by hand") {
  const auto x = Tensor<float>::arange(1.f, 5.f).reshape({2, 2});  // [[1 2] [3 4]]
  const auto y = fiber::pad(x, {1, 0}, 9.f);  // last dim: one before
  CHECK(y.shape() == fiber::Shape{2, 3});
  CHECK(y.to_vector() == std::vector<float>{9, 1, 2, 9, 3, 4});
  const auto z = fiber::pad(x, {0, 1, 1, 0});  // last dim one after, first dim one before
  CHECK(z.shape() == fiber::Shape{3, 3});
  CHECK(z.to_vector() == std::vector<float>{0, 0, 0, 1, 2, 0, 3, 4, 0});
  const auto c = fiber::pad(x, {-1, 1});  // crop the first column, pad one after
  CHECK(c.to_vector() == std::vector<float>{2, 0, 4, 0});
  CHECK(fiber::pad(x, {}).to_vector() == x.to_vector());
  CHECK(fiber::pad(x, {-2, 0}).shape() == fiber::Shape{2, 0});
  CHECK(fiber::pad(x.t(), {0, 1}, 5.f).to_vector() == std::vector<float>{1, 3, 5, 2, 4, 5});
}

TEST_CASE("gradcheck: pad") {
  const auto x = rnd({2, 3, 4}, 3);
  CHECK_GRADCHECK([](Vars v) { return fiber::pad(v[0], {1, 2, 0, 1}, 0.5); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::pad(v[0], {-1, 2, 1, -2, 1, 0}); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::pad(v[0].transpose(0, 2), {1, 1}); }, x);
}

TEST_CASE("pad: bad arguments name the op and the shapes") {
  const auto x = Tensor<float>::zeros({2, 3});
  CHECK_THROWS_WITH_AS(fiber::pad(x, {1}), doctest::Contains("pad: pads must come in (before, after) pairs"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::pad(x, {1, 1, 1, 1, 1, 1}), doctest::Contains("3 (before, after) pairs for a tensor of shape [2, 3]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::pad(x, {-2, -2}), doctest::Contains("gives a negative size -1"), fiber::Error);
}
