// roll: hand-checked values, negative and large shifts, views, the flat roll, gradcheck, errors,
// and a large case (many rows split over threads) against a per-element reference.
#include <doctest/doctest.h>

#include "fiber/ops/roll.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("roll: values by hand") {
  const auto x = Tensor<float>::arange(0.f, 6.f).reshape({2, 3});  // [[0 1 2] [3 4 5]]
  CHECK(fiber::roll(x, 1, 1).to_vector() == std::vector<float>{2, 0, 1, 5, 3, 4});
  CHECK(fiber::roll(x, -1, 1).to_vector() == std::vector<float>{1, 2, 0, 4, 5, 3});
  CHECK(fiber::roll(x, 4, -1).to_vector() == std::vector<float>{2, 0, 1, 5, 3, 4});  // 4 mod 3 = 1
  CHECK(fiber::roll(x, 1, 0).to_vector() == std::vector<float>{3, 4, 5, 0, 1, 2});
  CHECK(fiber::roll(x, {1, -1}, {0, 1}).to_vector() == std::vector<float>{4, 5, 3, 1, 2, 0});
  CHECK(fiber::roll(x, {2}, {}).to_vector() == std::vector<float>{4, 5, 0, 1, 2, 3});  // flat
  CHECK(fiber::roll(x, {1, 1}, {1, 1}).to_vector() == fiber::roll(x, 2, 1).to_vector());
  CHECK(fiber::roll(x, 3, 1).to_vector() == x.to_vector());
  // A transposed view rolls its logical elements.
  CHECK(fiber::roll(x.t(), 1, 0).to_vector() == std::vector<float>{2, 5, 0, 3, 1, 4});
  // Empty dims are fine.
  CHECK(fiber::roll(Tensor<float>::zeros({0, 3}), {2, 1}, {0, 1}).shape() == fiber::Shape{0, 3});
}

TEST_CASE("roll: Swin shift [B, H, W, C] against an index formula, several thread counts") {
  fiber::test::RestoreThreads restore;
  const std::int64_t B = 3, H = 24, W = 20, C = 40;
  const Tensor<double> x = rnd({B, H, W, C}, 7);
  for (int threads : {1, 2, 3}) {
    fiber::set_num_threads(threads);
    const Tensor<double> y = fiber::roll(x, {-3, 5}, {1, 2});
    bool ok = true;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t w = 0; w < W; ++w)
          for (std::int64_t c = 0; c < C; c += 7)
            ok = ok && y.at({b, (h - 3 + H) % H, (w + 5) % W, c}) == x.at({b, h, w, c});
    CHECK(ok);
  }
}

TEST_CASE("gradcheck: roll") {
  const auto x = rnd({2, 3, 4}, 11);
  CHECK_GRADCHECK([](Vars v) { return fiber::roll(v[0], {-1, 2}, {1, 2}); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::roll(v[0], {5}, {}); }, x);
  CHECK_GRADCHECK([](Vars v) { return fiber::roll(v[0].transpose(0, 2), 1, 0); }, x);
}

TEST_CASE("roll: bad arguments name the op") {
  const auto x = Tensor<float>::zeros({2, 3});
  CHECK_THROWS_WITH_AS(fiber::roll(x, {1, 2}, {0}), doctest::Contains("roll: 2 shifts for 1 axes"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::roll(x, 1, 2), doctest::Contains("roll: axis 2 is out of range"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::roll(x, {1, 2}, {}), doctest::Contains("roll: without axes exactly one shift"), fiber::Error);
}
