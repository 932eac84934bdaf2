#include <doctest/doctest.h>

#include <map>
#include <string>

#include "fiber/core/thread_pool.hpp"
#include "fiber/io/resize.hpp"
#include "image_fixtures.hpp"
#include "test_util.hpp"

using fiber::io::Image;
using fiber::io::ResizeFilter;
using fiber::test::image_manifest;

namespace {
// Runs every resize fixture; returns how many were checked.
int check_all_resize_fixtures() {
  std::map<std::string, Image> inputs;
  int checked = 0;
  for (const auto& entry : image_manifest()["resize"]) {
    const std::string input = entry["input"];
    if (!inputs.count(input)) inputs[input] = fiber::test::read_raw_rgb(input, entry["in_width"], entry["in_height"]);
    const int w = entry["width"], h = entry["height"];
    const std::string filter = entry["filter"];
    INFO(input, " -> ", w, "x", h, " ", filter);
    const Image expected = fiber::test::read_raw_rgb(entry["expected"], w, h);
    const Image resized = fiber::io::resize(inputs[input], w, h, fiber::io::parse_resize_filter(filter));
    REQUIRE(resized.width == w);
    REQUIRE(resized.height == h);
    const auto diff = fiber::test::compare_pixels(resized, expected);
    CHECK_MESSAGE(diff.differing == 0, "max |diff| ", diff.max_abs, " in ", diff.differing, " values");  // exact
    ++checked;
  }
  return checked;
}
}  // namespace

TEST_CASE("resize matches Pillow's Image.resize bit for bit (BICUBIC, BILINEAR, up and down)") {
  CHECK(check_all_resize_fixtures() >= 200);
}

TEST_CASE("resize results do not depend on the thread count") {
  const fiber::test::RestoreThreads restore_threads;
  fiber::set_num_threads(1);
  const int serial = check_all_resize_fixtures();
  fiber::set_num_threads(std::max(restore_threads.saved(), 3));
  CHECK(check_all_resize_fixtures() == serial);
  // Most fixtures fit in one work chunk; a large image is really split across the threads.
  Image big(1000, 700);
  for (std::size_t i = 0; i < big.pixels.size(); ++i) big.pixels[i] = std::uint8_t((i * 2654435761u) >> 24);
  for (ResizeFilter filter : {ResizeFilter::bicubic, ResizeFilter::bilinear}) {
    fiber::set_num_threads(1);
    const Image one = fiber::io::resize(big, 333, 211, filter);
    fiber::set_num_threads(3);
    CHECK(fiber::io::resize(big, 333, 211, filter).pixels == one.pixels);
  }
}

TEST_CASE("resize weights: taps, bounds and normalisation") {
  using fiber::io::detail::resample_axis;
  // Same size, bicubic: the identity (weight 1.0 = 2^22 on the centre tap).
  const auto same = resample_axis(5, 5, ResizeFilter::bicubic);
  CHECK(same.taps == 5);
  for (int o = 0; o < 5; ++o) {
    std::int64_t sum = 0;
    for (int t = 0; t < same.count[o]; ++t) sum += same.weights[o * same.taps + t];
    CHECK(sum == (1 << 22));
  }
  // Downscaling 100 -> 10 bilinear: support 10 on each side, 21 taps, edges clipped.
  const auto down = resample_axis(100, 10, ResizeFilter::bilinear);
  CHECK(down.taps == 21);
  CHECK(down.first[0] == 0);
  CHECK(down.first[9] + down.count[9] == 100);
  for (int o = 0; o < 10; ++o) {
    std::int64_t sum = 0;
    for (int t = 0; t < down.count[o]; ++t) sum += down.weights[o * down.taps + t];
    CHECK(std::abs(sum - (1 << 22)) <= down.count[o]);  // rounded per tap
  }
}

TEST_CASE("resize to the same size returns the same pixels; flip mirrors") {
  Image image(3, 2);
  for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = std::uint8_t(i * 11);
  CHECK(fiber::io::resize(image, 3, 2).pixels == image.pixels);
  const Image flipped = fiber::io::flip_horizontal(image);
  CHECK(flipped.at(0, 1, 2) == image.at(2, 1, 2));
  CHECK(fiber::io::flip_horizontal(flipped).pixels == image.pixels);
}

TEST_CASE("resize rejects empty sizes, bad buffers, sizes over the limit and unknown filters") {
  Image image(4, 4);
  CHECK_THROWS_WITH_AS(fiber::io::resize(image, 0, 3), doctest::Contains("output size 0x3 is empty"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::io::resize(image, 3, -1), doctest::Contains("output size 3x-1 is empty"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::io::resize(Image{}, 3, 3), doctest::Contains("input image is empty"), fiber::Error);
  Image broken(4, 4);
  broken.pixels.resize(7);
  CHECK_THROWS_WITH_AS(fiber::io::resize(broken, 2, 2), doctest::Contains("holds 7 bytes, expected 48"), fiber::Error);
  fiber::io::ImageLimits small;
  small.max_pixels = 100;
  CHECK_THROWS_WITH_AS(fiber::io::resize(image, 20, 20, ResizeFilter::bicubic, small),
                       doctest::Contains("over the limit of 100 pixels"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::io::parse_resize_filter("lanczos"),
                       doctest::Contains("unknown filter 'lanczos'; expected 'bilinear' or 'bicubic'"), fiber::Error);
}
