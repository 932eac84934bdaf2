// Operands read transposed (contiguous along the dimension before the run) are evaluated in
// tiles, each transposed into a buffer first. The tiles must give exactly the values the
// element-by-element path gives (the same expression on contiguous copies of the operands):
// same compiled code per packet, so bitwise equality is the expectation, not a tolerance.
#include <cstdint>

#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "test_util.hpp"

using fiber::Shape;
using fiber::Tensor;

TEST_CASE("a transposed float operand: tiles give the contiguous path's values, partial tiles included") {
  fiber::Generator g(3);
  // 137 x 211: neither dimension a multiple of the tile (16 or 8 rows, 64 columns).
  const Tensor<float> x = fiber::randn<float>({137, 211}, g), y = fiber::randn<float>({211, 137}, g);
  const Tensor<float> xt = x.t(), xc = xt.contiguous();
  CHECK(xt.stride(1) == 211);
  const Tensor<float> tiled = fiber::gelu(xt * y + 0.5) - fiber::tanh(xt);
  const Tensor<float> plain = fiber::gelu(xc * y + 0.5) - fiber::tanh(xc);
  CHECK(tiled.to_vector() == plain.to_vector());
  // And against the scalar definition, element by element, for a simple expression.
  const Tensor<float> sum = xt + 2.0 * y;
  for (std::int64_t i = 0; i < 211; i += 7)
    for (std::int64_t j = 0; j < 137; j += 5) CHECK(sum.at({i, j}) == x.at({j, i}) + 2.0f * y.at({i, j}));
}

TEST_CASE("a permuted double operand (NHWC read as NCHW) with a broadcast bias") {
  fiber::Generator g(4);
  const Tensor<double> nhwc = fiber::randn<double>({2, 9, 23, 40}, g);
  const Tensor<double> bias = fiber::randn<double>({40, 1, 1}, g);
  const Tensor<double> nchw = nhwc.permute({0, 3, 1, 2});  // [2, 40, 9, 23], contiguous along dim 1
  const Tensor<double> tiled = fiber::exp(nchw * 0.25) + bias;
  const Tensor<double> plain = fiber::exp(nchw.contiguous() * 0.25) + bias;
  CHECK(tiled.shape() == Shape{2, 40, 9, 23});
  CHECK(tiled.to_vector() == plain.to_vector());
}

TEST_CASE("two transposed operands, one broadcast along the tiled dimension, one of another type") {
  fiber::Generator g(5);
  const Tensor<float> a = fiber::randn<float>({300, 70}, g), b = fiber::randn<float>({300, 1}, g);
  const Tensor<std::int32_t> n = fiber::arange<std::int32_t>(0, 300 * 70).reshape({300, 70});
  const Tensor<float> tiled = fiber::where(a.t() > 0.0, a.t() * b.t(), n.t() + 1.0);
  const Tensor<float> plain =
      fiber::where(a.t().contiguous() > 0.0, a.t().contiguous() * b.t(), n.t().contiguous() + 1.0);
  CHECK(tiled.to_vector() == plain.to_vector());
}

TEST_CASE("assigning a transposed expression into a transposed view, and shapes too small to tile") {
  fiber::Generator g(6);
  const Tensor<float> x = fiber::randn<float>({64, 96}, g);
  Tensor<float> out = Tensor<float>::zeros({96, 64});
  out.t().assign(x.t().t() * 3.0);  // written through strides (64, 1)^T: a run path
  for (std::int64_t i = 0; i < 64; i += 9)
    for (std::int64_t j = 0; j < 96; j += 11) CHECK(out.at({j, i}) == x.at({i, j}) * 3.0f);
  const Tensor<float> thin = fiber::randn<float>({300, 5}, g);  // transposed: 5 rows, fewer than a tile
  const Tensor<float> r = thin.t() + 1.0;
  CHECK(r.to_vector() == Tensor<float>(thin.t().contiguous() + 1.0).to_vector());
}

TEST_CASE("tiled evaluation gives identical results for 1, 2 and 3 threads") {
  const fiber::test::RestoreThreads restore_threads;
  fiber::Generator g(7);
  const Tensor<float> x = fiber::randn<float>({3, 517, 389}, g);
  const Tensor<float> y = fiber::randn<float>({389, 517}, g);
  auto run = [&](int threads) {
    fiber::set_num_threads(threads);
    return Tensor<float>(fiber::gelu(x.transpose(1, 2) + y) * fiber::sigmoid(x.transpose(1, 2))).to_vector();
  };
  const auto one = run(1);
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}
