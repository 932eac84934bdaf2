// adaptive_avg_pool2d / adaptive_avg_pool1d: hand-checked windows and gradients.
#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("adaptive_avg_pool1d: overlapping windows [floor(i*n/m), ceil((i+1)*n/m))") {
  // n = 5, m = 3: windows [0, 2), [1, 4), [3, 5)
  auto x = Tensor<double>::from_data({1, 5}, {1, 2, 3, 4, 10});
  auto y = fiber::adaptive_avg_pool1d(x, 3);
  CHECK(y.to_vector() == std::vector<double>{1.5, 3, 7});
  // m > n repeats: n = 2, m = 3: [0, 1), [0, 2), [1, 2)
  auto z = fiber::adaptive_avg_pool1d(Tensor<double>::from_data({1, 1, 2}, {2, 4}), 3);
  CHECK(z.to_vector() == std::vector<double>{2, 3, 4});
}

TEST_CASE("adaptive_avg_pool2d: global pooling, equal size, 3-D input, non-contiguous input") {
  auto x = rnd({2, 3, 5, 7}, 401);
  auto g = fiber::adaptive_avg_pool2d(x, {1});
  CHECK(g.shape() == fiber::Shape{2, 3, 1, 1});
  FIBER_CHECK_CLOSE(g.view({2, 3}), fiber::mean(x, {2, 3}), 1e-14, 1e-14);
  CHECK(fiber::adaptive_avg_pool2d(x, {5, 7}).to_vector() == x.to_vector());
  auto c = fiber::adaptive_avg_pool2d(x.select(0, 1), {2, 3});
  CHECK(c.shape() == fiber::Shape{3, 2, 3});
  CHECK(c.to_vector() == fiber::adaptive_avg_pool2d(x, {2, 3}).select(0, 1).to_vector());
  auto t = fiber::adaptive_avg_pool2d(x.transpose(2, 3), {3, 2});
  // strided and contiguous inputs sum in different orders: equal to rounding
  FIBER_CHECK_CLOSE(t, fiber::adaptive_avg_pool2d(x.transpose(2, 3).contiguous(), {3, 2}), 1e-14, 1e-15);
  CHECK(fiber::adaptive_avg_pool2d(x, {0, 2}).shape() == fiber::Shape{2, 3, 0, 2});  // as PyTorch
}

TEST_CASE("gradcheck: adaptive_avg_pool2d down, up, overlapping, 3-D and non-contiguous inputs") {
  auto x = rnd({2, 2, 5, 7}, 411);
  for (auto size : std::vector<std::vector<std::int64_t>>{{3, 4}, {2, 3}, {7, 9}, {1, 1}, {5, 7}, {4}}) {
    CAPTURE(size[0]);
    CHECK_GRADCHECK([size](Vars v) { return fiber::adaptive_avg_pool2d(v[0], size); }, x);
  }
  CHECK_GRADCHECK([](Vars v) { return fiber::adaptive_avg_pool2d(v[0].transpose(1, 3), {3, 2}); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::adaptive_avg_pool2d(v[0].select(0, 1), {3, 3}); }, x);
}

TEST_CASE("gradcheck: adaptive_avg_pool1d") {
  auto x = rnd({2, 3, 7}, 421);
  for (std::int64_t size : {3, 1, 7, 10}) {
    CAPTURE(size);
    CHECK_GRADCHECK([size](Vars v) { return fiber::adaptive_avg_pool1d(v[0], size); }, x);
    CHECK_GRADCHECK([size](Vars v) { return fiber::adaptive_avg_pool1d(v[0].transpose(0, 1), size); }, x);
    CHECK_GRADCHECK([size](Vars v) { return fiber::adaptive_avg_pool1d(v[0].select(1, 2), size); }, x);
  }
}
