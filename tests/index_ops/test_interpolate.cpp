// interpolate: hand-checked values, output sizes from scale factors, gradients for every mode.
#include <doctest/doctest.h>

#include "fiber/fiber.hpp"
#include "gradcheck_util.hpp"
#include "test_util.hpp"

using fiber::InterpolateMode;
using fiber::InterpolateOptions;
using fiber::Tensor;
using fiber::Var;
using fiber::test::rnd;
using Vars = std::span<const Var<double>>;

TEST_CASE("nearest: twice the size repeats pixels, other sizes floor(dst * in / out)") {
  auto x = Tensor<float>::from_data({1, 1, 2, 2}, {1, 2, 3, 4});
  auto y = fiber::interpolate(x, {.size = {4, 4}});
  CHECK(y.to_vector() == std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  auto z = fiber::interpolate(x, {.size = {3, 1}});  // rows floor(j * 2/3) = 0, 0, 1; column 0
  CHECK(z.to_vector() == std::vector<float>{1, 1, 3});
  auto w = fiber::upsample_nearest(x, {1, 3});  // nearest-legacy: columns 0, 0, 1
  CHECK(w.to_vector() == std::vector<float>{1, 1, 2});
  // nearest_exact: floor((j + 0.5) * in / out): row floor(0.5 * 2) = 1, columns 0, 1, 1
  auto e = fiber::interpolate(x, {.size = {1, 3}, .mode = InterpolateMode::nearest_exact});
  CHECK(e.to_vector() == std::vector<float>{3, 4, 4});
}

TEST_CASE("bilinear with and without align_corners") {
  auto x = Tensor<double>::from_data({1, 1, 2, 2}, {0, 1, 2, 3});
  auto a = fiber::upsample_bilinear(x, {3, 3});  // align_corners = true
  CHECK(a.to_vector() == std::vector<double>{0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3});
  auto row = Tensor<double>::from_data({1, 1, 1, 2}, {0, 1});
  auto b = fiber::interpolate(row, {.size = {1, 4}, .mode = InterpolateMode::bilinear});
  CHECK(b.to_vector() == std::vector<double>{0, 0.25, 0.75, 1});
  // 3-D linear is the same along W
  auto c = fiber::interpolate(row.view({1, 1, 2}), {.size = {4}, .mode = InterpolateMode::linear});
  CHECK(c.to_vector() == b.to_vector());
}

TEST_CASE("bicubic keeps constants, and interpolates samples with align_corners") {
  auto x = Tensor<double>::full({1, 2, 3, 4}, 2.5);
  for (bool ac : {false, true}) {
    auto y = fiber::interpolate(x, {.size = {7, 5}, .mode = InterpolateMode::bicubic, .align_corners = ac});
    FIBER_CHECK_CLOSE(y, Tensor<double>::full({1, 2, 7, 5}, 2.5), 1e-14, 1e-14);
  }
  // align_corners: output 2k samples input k exactly when out - 1 = 2 (in - 1)
  auto r = rnd({1, 1, 3, 4}, 301);
  auto y = fiber::interpolate(r, {.size = {5, 7}, .mode = InterpolateMode::bicubic, .align_corners = true});
  FIBER_CHECK_CLOSE(y.slice(2, 0, 5, 2).slice(3, 0, 7, 2), r, 1e-14, 1e-14);
}

TEST_CASE("output size from scale factors: floor(in * factor)") {
  auto x = rnd({1, 1, 5, 7}, 311);
  auto y = fiber::interpolate(x, {.scale_factor = {1.7, 0.6}, .mode = InterpolateMode::bilinear});
  CHECK(y.shape() == fiber::Shape{1, 1, 8, 4});
  auto z = fiber::interpolate(x.view({1, 5, 7}), {.scale_factor = {2.5}, .mode = InterpolateMode::linear});
  CHECK(z.shape() == fiber::Shape{1, 5, 17});
  auto s = fiber::interpolate(x, {.scale_factor = {0.5}, .mode = InterpolateMode::area});
  CHECK(s.shape() == fiber::Shape{1, 1, 2, 3});
  // the factor (not in/out) sets the coordinates unless recompute_scale_factor is set
  auto given = fiber::interpolate(x, {.scale_factor = {1.3}, .mode = InterpolateMode::bilinear});
  auto recomputed = fiber::interpolate(x, {.scale_factor = {1.3}, .mode = InterpolateMode::bilinear, .recompute_scale_factor = true});
  auto by_size = fiber::interpolate(x, {.size = {6, 9}, .mode = InterpolateMode::bilinear});
  CHECK(recomputed.to_vector() == by_size.to_vector());
  CHECK(given.to_vector() != by_size.to_vector());
}

namespace {
// Every mode / align_corners combination of a 4-D input, as options with the given size.
std::vector<InterpolateOptions> modes_4d(std::vector<std::int64_t> size) {
  std::vector<InterpolateOptions> out;
  out.push_back({.size = size, .mode = InterpolateMode::nearest});
  out.push_back({.size = size, .mode = InterpolateMode::nearest_exact});
  out.push_back({.size = size, .mode = InterpolateMode::area});
  for (bool ac : {false, true}) {
    out.push_back({.size = size, .mode = InterpolateMode::bilinear, .align_corners = ac});
    out.push_back({.size = size, .mode = InterpolateMode::bicubic, .align_corners = ac});
  }
  return out;
}
}  // namespace

TEST_CASE("gradcheck: interpolate, every 4-D mode, up, down, mixed, equal sizes, non-contiguous") {
  auto x = rnd({2, 2, 4, 5}, 321);
  for (auto size : std::vector<std::vector<std::int64_t>>{{7, 9}, {3, 2}, {6, 3}, {4, 5}, {1, 1}}) {
    for (const auto& opt : modes_4d(size)) {
      CAPTURE(fiber::interpolate_mode_name(opt.mode));
      CAPTURE(opt.align_corners.value_or(false));
      CAPTURE(size[0]);
      CAPTURE(size[1]);
      CHECK_GRADCHECK([opt](Vars v) { return fiber::interpolate(v[0], opt); }, x);
    }
  }
  // non-contiguous input: a transposed view ([2, 2, 5, 4])
  for (const auto& opt : modes_4d({8, 3})) {
    CAPTURE(fiber::interpolate_mode_name(opt.mode));
    CHECK_GRADCHECK([opt](Vars v) { return fiber::interpolate(v[0].transpose(2, 3), opt); }, x);
  }
}

TEST_CASE("gradcheck: interpolate with scale factors, given and recomputed") {
  auto x = rnd({1, 2, 5, 4}, 331);
  for (auto mode : {InterpolateMode::nearest, InterpolateMode::nearest_exact, InterpolateMode::bilinear, InterpolateMode::bicubic}) {
    CAPTURE(fiber::interpolate_mode_name(mode));
    for (bool recompute : {false, true}) {
      const InterpolateOptions opt{.scale_factor = {1.7, 0.6}, .mode = mode, .recompute_scale_factor = recompute};
      CHECK_GRADCHECK([opt](Vars v) { return fiber::interpolate(v[0], opt); }, x);
    }
    // equal output size with a factor that is not 1 (bicubic: not an identity)
    const InterpolateOptions same{.scale_factor = {1.1}, .mode = mode};
    CHECK_GRADCHECK([same](Vars v) { return fiber::interpolate(v[0], same); }, x);
  }
}

TEST_CASE("gradcheck: 3-D interpolate (nearest, nearest_exact, linear, area)") {
  auto x = rnd({2, 3, 6}, 341);
  for (std::int64_t size : {11, 4, 6, 1}) {
    CAPTURE(size);
    for (const InterpolateOptions& opt :
         {InterpolateOptions{.size = {size}, .mode = InterpolateMode::nearest},
          InterpolateOptions{.size = {size}, .mode = InterpolateMode::nearest_exact},
          InterpolateOptions{.size = {size}, .mode = InterpolateMode::area},
          InterpolateOptions{.size = {size}, .mode = InterpolateMode::linear, .align_corners = false},
          InterpolateOptions{.size = {size}, .mode = InterpolateMode::linear, .align_corners = true}}) {
      CAPTURE(fiber::interpolate_mode_name(opt.mode));
      CHECK_GRADCHECK([opt](Vars v) { return fiber::interpolate(v[0], opt); }, x);
      CHECK_GRADCHECK([opt](Vars v) { return fiber::interpolate(v[0].transpose(0, 1), opt); }, x);
    }
  }
}

TEST_CASE("float and double give the same values (coordinates in the element type)") {
  auto xd = rnd({1, 2, 5, 6}, 351);
  Tensor<float> xf = xd.to<float>();
  for (const auto& opt : modes_4d({9, 4})) {
    CAPTURE(fiber::interpolate_mode_name(opt.mode));
    FIBER_CHECK_CLOSE(fiber::interpolate(xf, opt), fiber::interpolate(xd, opt), 1e-5, 1e-6);
  }
}
