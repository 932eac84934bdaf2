#include <doctest/doctest.h>

#include "fiber/fiber.hpp"

using fiber::Shape;
using fiber::Tensor;

TEST_CASE("broadcasting over leading, middle and trailing dimensions") {
  auto a = fiber::arange<float>(0, 6).reshape({2, 3, 1});
  auto b = fiber::arange<float>(0, 4).reshape({4});
  Tensor<float> c = a * 10.0 + b;
  CHECK(c.shape() == Shape{2, 3, 4});
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) CHECK(c.at({i, j, k}) == float((i * 3 + j) * 10 + k));
  auto row = fiber::arange<float>(0, 3).reshape({1, 3});
  auto col = fiber::arange<float>(0, 5).reshape({5, 1});
  Tensor<float> outer = row * col;
  CHECK(outer.shape() == Shape{5, 3});
  CHECK(outer.at({4, 2}) == 8.0f);
  CHECK_THROWS_WITH_AS(a + fiber::zeros<float>({2, 1}), doctest::Contains("add: shapes [2, 3, 1] and [2, 1]"), fiber::Error);
}

TEST_CASE("non-contiguous operands: transposed, sliced, expanded") {
  auto m = fiber::arange<float>(0, 20).reshape({4, 5});
  auto mt = m.t();                    // [5, 4], strides (1, 5)
  auto every_other = m.slice(1, 0, 5, 2);  // [4, 3]
  Tensor<float> sum = mt.narrow(0, 0, 3).t() + every_other;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) CHECK(sum.at({i, j}) == m.at({i, j}) + m.at({i, 2 * j}));
  auto e = fiber::arange<float>(0, 3).expand({4, 3});
  Tensor<float> r = e + 1.0;
  CHECK(r.at({3, 2}) == 3.0f);
}

TEST_CASE("large expressions give identical results for 1, 2 and 3 threads") {
  fiber::Generator g(1);
  auto x = fiber::randn<float>({257, 1031}, g);
  auto y = fiber::randn<float>({1031}, g);
  auto run = [&](int threads) {
    fiber::set_num_threads(threads);
    return Tensor<float>(fiber::gelu(x * y + 0.5) * fiber::tanh(x) + fiber::exp(-fiber::abs(y))).to_vector();
  };
  auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
  fiber::set_num_threads(2);
}

TEST_CASE("zero-sized tensors evaluate to zero-sized results") {
  auto z = fiber::zeros<float>({0, 3});
  Tensor<float> r = z * 2.0 + 1.0;
  CHECK(r.shape() == Shape{0, 3});
}
