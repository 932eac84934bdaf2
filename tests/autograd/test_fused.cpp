#include <doctest/doctest.h>

#include <span>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"

using fiber::Shape;
using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("gradcheck: unary elementwise operations") {
  auto x = rnd({3, 5}, 1);
  auto pos = rnd({3, 5}, 2, 0.2, 3.0);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(-v[0]); }, x);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::abs(v[0])); }, x);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::exp(v[0])); }, x);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::log(v[0])); }, pos);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::sqrt(v[0])); }, pos);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::rsqrt(v[0])); }, pos);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::reciprocal(v[0])); }, pos);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::square(v[0])); }, x);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::tanh(v[0])); }, x);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::sigmoid(v[0])); }, x);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::erf(v[0])); }, x);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::gelu(v[0] * 3.0)); }, x);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::relu(v[0])); }, x);
}

TEST_CASE("gradcheck: binary operations, with broadcasting on either side") {
  auto a = rnd({4, 3}, 3);
  auto row = rnd({3}, 4);
  auto col = rnd({4, 1}, 5, 0.5, 2.0);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(v[0] + v[1]); }, a, row);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(v[0] - v[1]); }, a, col);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(v[0] * v[1]); }, a, row);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(v[0] / v[1]); }, a, col);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::pow(v[1], v[0])); }, a, col);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::pow(v[0], 3.0)); }, a);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::maximum(v[0], v[1])); }, a, row);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::minimum(v[0], v[1])); }, a, row);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(2.0 - v[0] / 3.0); }, a);
}

TEST_CASE("gradcheck: where, clamp, masked_fill, comparisons") {
  auto a = rnd({5, 4}, 6);
  auto b = rnd({4}, 7);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::where(v[0] > v[1], v[0] * 2.0, v[1] * v[0])); }, a, b);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::clamp(v[0], -0.5, 0.4)); }, a);
  CHECK_GRADCHECK([](Vars v) { return Var<double>(fiber::clamp(v[0], v[1] - 0.3, v[1] + 0.3)); }, a, b);
  auto mask = Tensor<bool>::from_data({4}, {true, false, false, true});
  CHECK_GRADCHECK([mask](Vars v) { return Var<double>(fiber::masked_fill(v[0], mask, -3.0)); }, a);
}

TEST_CASE("maximum splits the gradient evenly on ties, as PyTorch does") {
  Var<double> a(Tensor<double>::from_data({2}, {1, 2}), true);
  Var<double> b(Tensor<double>::from_data({2}, {1, 3}), true);
  Var<double> m = fiber::maximum(a, b);
  fiber::sum(m).backward();
  CHECK(a.grad().to_vector() == std::vector<double>{0.5, 0});
  CHECK(b.grad().to_vector() == std::vector<double>{0.5, 1});
}

TEST_CASE("a chain of elementwise operations is one node whose backward matches gradcheck") {
  auto a = rnd({6, 5}, 8);
  auto b = rnd({5}, 9);
  auto c = rnd({6, 1}, 10);
  auto chain = [](Vars v) {
    return Var<double>(fiber::exp(fiber::gelu(v[0] * v[1] + v[2]) * 0.5 - fiber::tanh(v[0])));
  };
  std::vector<Var<double>> vars{Var<double>(a, true), Var<double>(b, true), Var<double>(c, true)};
  Var<double> y = chain(vars);
  REQUIRE(y.grad_fn());
  CHECK(std::string(y.grad_fn()->name()) == "fused elementwise");
  CHECK(y.grad_fn()->next().empty());  // its inputs are leaves: the tape holds this one node
  CHECK_GRADCHECK(chain, a, b, c);
}

TEST_CASE("plain tensors in a Var expression are constants") {
  auto t = Tensor<double>::from_data({2}, {3, 4});
  Var<double> x(Tensor<double>::from_data({2}, {1, 2}), true);
  Var<double> y = x * t + t;
  fiber::sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3, 4});
}
