// deform_conv2d: what it must equal without deformation (conv2d), an integer shift by hand, the
// mask as a per-tap scale, gradchecks (float64) of every input, thread-count independence,
// non-finite and huge offsets, and errors naming the wrong shape.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "fiber/ops/conv.hpp"
#include "fiber/ops/deform_conv.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::Conv2dOptions;
using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("deform_conv2d: zero offsets and no mask are conv2d") {
  const Conv2dOptions options[] = {
      {{1, 1}, {1, 1}, {1, 1}, 1}, {{2, 2}, {1, 1}, {1, 1}, 1}, {{1, 2}, {2, 0}, {2, 1}, 2}, {{1, 1}, {0, 0}, {1, 1}, 1}};
  for (const auto& opt : options) {
    const auto x = rnd({2, 4, 7, 9}, 1), w = rnd({6, 4 / opt.groups, 3, 3}, 2), b = rnd({6}, 3);
    const Tensor<double> want = fiber::conv2d(x, w, b, opt);
    const Tensor<double> offset = Tensor<double>::zeros({2, 18, want.size(2), want.size(3)});
    FIBER_CHECK_CLOSE(fiber::deform_conv2d(x, offset, Tensor<double>(), w, b, opt), want, 1e-12, 1e-12);
    // A mask of ones is the same; a mask of 0.5 halves the convolution (the bias stays).
    const Tensor<double> ones = Tensor<double>::ones({2, 9, want.size(2), want.size(3)});
    FIBER_CHECK_CLOSE(fiber::deform_conv2d(x, offset, ones, w, b, opt), want, 1e-12, 1e-12);
    const Tensor<double> half = Tensor<double>::full({2, 9, want.size(2), want.size(3)}, 0.5);
    const Tensor<double> no_bias = fiber::conv2d(x, w, Tensor<double>(), opt);
    const Tensor<double> half_conv = no_bias * 0.5;
    FIBER_CHECK_CLOSE(fiber::deform_conv2d(x, offset, half, w, Tensor<double>(), opt), half_conv, 1e-12, 1e-12);
  }
}

TEST_CASE("deform_conv2d: a 1x1 kernel with offset (+1, -0.5) samples below and half a pixel left, by hand") {
  // x: one channel, 3x3 = [[0 1 2] [3 4 5] [6 7 8]]. Output (y, x) reads x at (y + 1, x - 0.5):
  // the mean of the two neighbours on the next row, 0 for the missing left one, nothing below.
  const Tensor<double> x = Tensor<double>::arange(0., 9.).reshape({1, 1, 3, 3});
  Tensor<double> offset = Tensor<double>::zeros({1, 2, 3, 3});
  offset.select(1, 0).fill_(1.0);
  offset.select(1, 1).fill_(-0.5);
  const Tensor<double> w = Tensor<double>::ones({1, 1, 1, 1});
  const auto y = fiber::deform_conv2d(x, offset, Tensor<double>(), w, Tensor<double>(), {{1, 1}, {0, 0}, {1, 1}, 1});
  // Row 0 reads row 1 at x - 0.5: (0 + 3)/2 with the left neighbour outside = 1.5, (3+4)/2, (4+5)/2.
  CHECK(y.to_vector() == std::vector<double>{1.5, 3.5, 4.5, 3.0, 6.5, 7.5, 0, 0, 0});
}

TEST_CASE("gradcheck: deform_conv2d (input, offset, mask, weight, bias)") {
  const Conv2dOptions same{{1, 1}, {1, 1}, {1, 1}, 1}, strided{{2, 1}, {1, 0}, {1, 2}, 2};
  // Offsets in (-1.7, 1.7) plus a fractional shift keep sampling points off integer coordinates,
  // where the coordinate gradient is one-sided.
  const auto x = rnd({2, 4, 5, 6}, 4), w = rnd({3, 4, 3, 3}, 5), b = rnd({3}, 6);
  const Tensor<double> offset = rnd({2, 18, 5, 6}, 7, -1.7, 1.7) + 0.123;
  const auto mask = rnd({2, 9, 5, 6}, 8, 0, 1);
  CHECK_GRADCHECK([&](Vars v) { return fiber::deform_conv2d(v[0], v[1], v[2], v[3], v[4], same); }, x, offset, mask, w,
                  b);
  // Conv groups 2, offset groups 2, stride and dilation, no mask.
  const auto w2 = rnd({4, 2, 3, 3}, 9);
  const Tensor<double> probe = fiber::conv2d(x, w2, Tensor<double>(), strided);
  const Tensor<double> offset2 = rnd({2, 36, probe.size(2), probe.size(3)}, 10, -1.7, 1.7) + 0.231;
  CHECK_GRADCHECK([&](Vars v) { return fiber::deform_conv2d(v[0], v[1], Var<double>(), v[2], Var<double>(), strided); },
                  x, offset2, w2);
}

TEST_CASE("deform_conv2d: the same values and gradients for any thread count") {
  fiber::test::RestoreThreads restore;
  const Tensor<float> x = rnd({2, 16, 12, 14}, 11).to<float>(), w = rnd({8, 16, 3, 3}, 12).to<float>();
  const Tensor<float> offset = rnd({2, 18, 12, 14}, 13, -3, 3).to<float>(), mask = rnd({2, 9, 12, 14}, 14, 0, 1).to<float>();
  auto run = [&](int threads) {
    fiber::set_num_threads(threads);
    Var<float> vx(x.clone(), true), vo(offset.clone(), true), vm(mask.clone(), true), vw(w.clone(), true);
    Var<float> y = fiber::deform_conv2d(vx, vo, vm, vw, Var<float>(), {{1, 1}, {1, 1}, {1, 1}, 1});
    y.backward(Tensor<float>::ones(y.shape()));
    return std::vector<std::vector<float>>{y.value().to_vector(), vx.grad().to_vector(), vo.grad().to_vector(),
                                           vm.grad().to_vector(), vw.grad().to_vector()};
  };
  const auto one = run(1);
  CHECK(run(3) == one);
}

TEST_CASE("deform_conv2d: NaN, infinite and huge offsets read nothing and have zero gradient") {
  const auto x = rnd({1, 2, 4, 4}, 15), w = rnd({1, 2, 1, 1}, 16);
  Tensor<double> offset = Tensor<double>::zeros({1, 2, 4, 4});
  const double bad[] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                        -std::numeric_limits<double>::infinity(), 1e300, -1e300, 4.0, -4.0};  // ±4: y = oy ± 4 lands on or beyond the edges 4 and −1
  for (double v : bad) {
    CAPTURE(v);
    offset.select(1, 0).fill_(v);
    Var<double> vx(x.clone(), true), vo(offset.clone(), true);
    Var<double> y = fiber::deform_conv2d(vx, vo, Var<double>(), Var<double>(w), Var<double>());
    CHECK(y.value().to_vector() == std::vector<double>(16, 0.0));
    y.backward(Tensor<double>::ones(y.shape()));
    CHECK(vx.grad().to_vector() == std::vector<double>(32, 0.0));
    CHECK(vo.grad().to_vector() == std::vector<double>(32, 0.0));
  }
}

TEST_CASE("deform_conv2d: wrong shapes are errors naming what was expected") {
  const auto x = rnd({1, 4, 5, 5}, 17), w = rnd({2, 4, 3, 3}, 18);
  const auto ok_offset = Tensor<double>::zeros({1, 18, 3, 3});
  CHECK_THROWS_WITH_AS(fiber::deform_conv2d(x, Tensor<double>::zeros({1, 17, 3, 3}), Tensor<double>(), w),
                       doctest::Contains("deform_conv2d: offset must be [N, 2·G·9, Ho, Wo] = [1, 2·G·9, 3, 3]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::deform_conv2d(x, Tensor<double>::zeros({1, 18, 5, 5}), Tensor<double>(), w),
                       doctest::Contains("got [1, 18, 5, 5]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::deform_conv2d(x, ok_offset, Tensor<double>::zeros({1, 8, 3, 3}), w),
                       doctest::Contains("deform_conv2d: mask must be [1, 9, 3, 3]"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::deform_conv2d(x, Tensor<double>::zeros({1, 54, 3, 3}), Tensor<double>(), w),
                       doctest::Contains("4 input channels do not divide into 3 offset groups"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::deform_conv2d(x, ok_offset, Tensor<double>(), w, Tensor<double>::zeros({3})),
                       doctest::Contains("deform_conv2d: bias of shape [3] for 2 output channels"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::deform_conv2d(x, ok_offset, Tensor<double>(), rnd({2, 3, 3, 3}, 19)),
                       doctest::Contains("conv2d: weight"), fiber::Error);
}
