// GradNeeds for any number of inputs: a concat or stack of more than 64 Vars gives every input
// its gradient (the mask used to stop at 64 and silently dropped the rest).
#include <doctest/doctest.h>

#include <vector>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::GradNeeds;
using fiber::Tensor;
using fiber::Var;
using Vars = std::span<const Var<double>>;

TEST_CASE("GradNeeds holds any number of inputs") {
  for (std::size_t n : {0, 1, 63, 64, 65, 70, 128, 129, 300}) {
    GradNeeds needs(n);
    for (std::size_t i = 0; i < n; i += 3) needs.set(i);
    INFO("n = " << n);
    CHECK(needs.size() == n);
    for (std::size_t i = 0; i < n + 5; ++i) CHECK(needs[i] == (i < n && i % 3 == 0));
    const GradNeeds copy = needs;  // closures take it by value
    for (std::size_t i = 0; i < n; ++i) CHECK(copy[i] == needs[i]);
  }
  GradNeeds few(3);
  CHECK_THROWS_AS(few.set(3), fiber::Error);
}

TEST_CASE("gradcheck: concat of 70 inputs") {
  std::vector<Tensor<double>> inputs;
  for (int i = 0; i < 70; ++i) inputs.push_back(fiber::test::rnd({1 + i % 3, 2}, 100 + i));
  CHECK_GRADCHECK([](Vars xs) { return fiber::concat(xs, 0); }, inputs);
}

TEST_CASE("concat and stack of 70 Vars: every input that requires grad gets its own slice of the gradient") {
  constexpr int n = 70;
  std::vector<Var<double>> xs;
  for (int i = 0; i < n; ++i) {
    // Every 9th input is a constant: it must get no gradient, and the others must not shift.
    xs.emplace_back(Tensor<double>::full({2, 3}, double(i)), i % 9 != 4);
  }
  // Weights that differ per input, so a gradient sent to the wrong input shows.
  const Tensor<double> w = fiber::arange<double>(0, 2.0 * 3 * n).reshape({2 * n, 3});
  fiber::sum(Var<double>(fiber::concat(xs, 0) * w)).backward();
  for (int i = 0; i < n; ++i) {
    INFO("concat input " << i);
    if (i % 9 == 4) {
      CHECK_FALSE(xs[i].grad().defined());
      continue;
    }
    REQUIRE(xs[i].grad().defined());
    CHECK(xs[i].grad().to_vector() == w.narrow(0, 2 * i, 2).to_vector());
  }
  for (auto& x : xs) x.zero_grad();
  const Tensor<double> ws = fiber::arange<double>(0, 2.0 * 3 * n).reshape({2, n, 3});
  fiber::sum(Var<double>(fiber::stack(xs, 1) * ws)).backward();
  for (int i = 0; i < n; ++i) {
    INFO("stack input " << i);
    if (i % 9 == 4) {
      CHECK_FALSE(xs[i].grad().defined());
      continue;
    }
    REQUIRE(xs[i].grad().defined());
    CHECK(xs[i].grad().to_vector() == ws.select(1, i).to_vector());
  }
}
