#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;

TEST_CASE("leaf gradients accumulate across backward calls until zero_grad") {
  Var<double> x(Tensor<double>::from_data({3}, {1, 2, 3}), true);
  for (int i = 0; i < 2; ++i) {
    Var<double> y = x * x;
    fiber::sum(y).backward();
  }
  CHECK(x.grad().to_vector() == std::vector<double>{4, 8, 12});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  Var<double> y = x * 3.0;
  fiber::sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3, 3, 3});
}

TEST_CASE("a Var used twice gets the sum of both paths") {
  Var<double> x(Tensor<double>::from_data({2}, {1, 2}), true);
  Var<double> a = x * 2.0;
  Var<double> b = fiber::exp(x);
  Var<double> c = a + b + x;
  fiber::sum(c).backward();
  CHECK(x.grad().at({0}) == doctest::Approx(2 + std::exp(1.0) + 1));
  CHECK(x.grad().at({1}) == doctest::Approx(2 + std::exp(2.0) + 1));
}

TEST_CASE("NoGrad records nothing; detach cuts the graph") {
  Var<double> x(Tensor<double>::from_data({2}, {1, 2}), true);
  {
    fiber::NoGrad guard;
    CHECK_FALSE(fiber::grad_enabled());
    Var<double> y = x * x;
    CHECK(y.is_leaf());
    CHECK_FALSE(y.requires_grad());
    {
      fiber::EnableGrad on;
      Var<double> z = x * x;
      CHECK_FALSE(z.is_leaf());
    }
  }
  CHECK(fiber::grad_enabled());
  Var<double> d = x.detach();
  Var<double> y = d * x;
  fiber::sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1, 2});  // only through the second factor
  CHECK_FALSE(d.requires_grad());
}

TEST_CASE("backward errors are clear") {
  Var<double> x(Tensor<double>::from_data({2}, {1, 2}), true);
  Var<double> y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("output has shape [2]"), fiber::Error);
  CHECK_THROWS_WITH_AS(y.backward(Tensor<double>::ones({3})), doctest::Contains("gradient of shape [3]"), fiber::Error);
  Var<double> c(Tensor<double>::ones({1}));
  CHECK_THROWS_WITH_AS(c.backward(), doctest::Contains("does not require grad"), fiber::Error);
  Var<double> undefined;
  CHECK_THROWS_WITH_AS(undefined.value(), doctest::Contains("undefined"), fiber::Error);
  CHECK_THROWS_AS(Var<std::int64_t>(Tensor<std::int64_t>::ones({1}), true), fiber::Error);
  y.backward(Tensor<double>::from_data({2}, {1, 10}));
  CHECK(x.grad().to_vector() == std::vector<double>{2, 20});
}

TEST_CASE("a leaf's grad is its own tensor, not shared with another leaf's") {
  Var<double> a(Tensor<double>::ones({2}), true), b(Tensor<double>::ones({2}), true);
  Var<double> s = a + b;
  fiber::sum(s).backward();
  CHECK_FALSE(a.grad().shares_storage_with(b.grad()));
  a.grad().fill_(5);
  CHECK(b.grad().to_vector() == std::vector<double>{1, 1});
}
