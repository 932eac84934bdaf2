// A tiny program against the installed package: evaluate an expression, backpropagate, check.
#include <fiber/fiber.hpp>

#include <cmath>
#include <cstdio>

int main() {
  fiber::Var<double> x(fiber::Tensor<double>::from_data({3}, {0.5, 1.0, 2.0}), true);
  fiber::Var<double> y = fiber::tanh(x) * x;
  fiber::sum(y).backward();
  const double g = x.grad().at({1});
  const double want = std::tanh(1.0) + 1.0 * (1 - std::tanh(1.0) * std::tanh(1.0));
  std::printf("consumer: d/dx tanh(x)*x at 1 = %.12f (expected %.12f)\n", g, want);
  return std::abs(g - want) < 1e-12 ? 0 : 1;
}
