#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "fiber/io/preprocess.hpp"
#include "image_fixtures.hpp"

using fiber::io::FloatImage;
using fiber::io::Image;
using fiber::test::image_manifest;

namespace {
// Counts values that are not the same float (bit for bit; -0 and +0 count as equal).
std::size_t count_different_floats(const std::vector<float>& a, const std::vector<float>& b, float& max_abs) {
  std::size_t differing = 0;
  max_abs = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i] != b[i]) ++differing;
    max_abs = std::max(max_abs, std::fabs(a[i] - b[i]));
  }
  return differing;
}
}  // namespace

TEST_CASE("coarse preprocessing equals torchvision Resize(BICUBIC) + ToTensor + Normalize exactly") {
  int checked = 0;
  for (const auto& entry : image_manifest()["coarse"]) {
    const std::string input = entry["input"];
    INFO(input);
    const Image image = fiber::test::read_raw_rgb(input, entry["in_width"], entry["in_height"]);
    const int size = entry["size"];
    const FloatImage out = fiber::io::preprocess_coarse(image, size);
    CHECK(out.channels == 3);
    CHECK(out.height == size);
    CHECK(out.width == size);
    const std::vector<float> expected = fiber::test::read_raw_f32(entry["expected"]);
    REQUIRE(expected.size() == out.data.size());
    float max_abs = 0;
    // Tolerance: none. The table holds torch's float32 results of (v / 255 - mean) / std.
    CHECK_MESSAGE(count_different_floats(out.data, expected, max_abs) == 0, "max |diff| ", max_abs);
    ++checked;
  }
  CHECK(checked == 3);
}

TEST_CASE("fine-grained preprocessing equals the official pipeline (bilinear, BGR 0-255, padding) exactly") {
  int checked = 0;
  for (const auto& entry : image_manifest()["fine"]) {
    const std::string input = entry["input"];
    INFO(input);
    const Image image = fiber::test::read_raw_rgb(input, entry["in_width"], entry["in_height"]);
    const auto out = fiber::io::preprocess_fine_grained(image, entry["size"], entry["max_size"]);
    CHECK(out.resized_width == entry["resized_width"]);
    CHECK(out.resized_height == entry["resized_height"]);
    CHECK(out.original_width == image.width);
    CHECK(out.original_height == image.height);
    CHECK(out.image.width == entry["padded_width"]);
    CHECK(out.image.height == entry["padded_height"]);
    CHECK(out.image.width % 32 == 0);
    CHECK(out.image.height % 32 == 0);
    const std::vector<float> expected = fiber::test::read_raw_f32(entry["expected"]);
    REQUIRE(expected.size() == out.image.data.size());
    float max_abs = 0;
    CHECK_MESSAGE(count_different_floats(out.image.data, expected, max_abs) == 0, "max |diff| ", max_abs);  // exact
    ++checked;
  }
  CHECK(checked == 4);
}

TEST_CASE("fine-grained size rule matches maskrcnn_benchmark Resize.get_size") {
  int checked = 0;
  for (const auto& c : image_manifest()["fine_sizes"]) {
    const int w = c["width"], h = c["height"], size = c["size"], max_size = c["max_size"];
    INFO(w, "x", h, " shorter ", size, " max ", max_size);
    const int expected_w = c["out_width"], expected_h = c["out_height"];
    if (expected_w < 1 || expected_h < 1) {
      CHECK_THROWS_WITH_AS(fiber::io::fine_grained_resize_size(w, h, size, max_size),
                           doctest::Contains("gives the unusable size"), fiber::Error);
    } else {
      const auto s = fiber::io::fine_grained_resize_size(w, h, size, max_size);
      CHECK(s.width == expected_w);
      CHECK(s.height == expected_h);
    }
    ++checked;
  }
  CHECK(checked >= 70);
  // Test-time setting on a VGA frame: 800 x 1066.
  const auto vga = fiber::io::fine_grained_resize_size(640, 480, 800, 1333);
  CHECK(vga.width == 1066);
  CHECK(vga.height == 800);
}

TEST_CASE("normalisation tables, channel order and padding") {
  Image image(2, 1);
  image.pixels = {255, 0, 10, 0, 128, 255};
  const FloatImage rgb = fiber::io::normalize_image(image, fiber::io::coarse_normalization(), 3, 2);
  CHECK(rgb.width == 3);
  CHECK(rgb.height == 2);
  CHECK(rgb.at(0, 0, 0) == doctest::Approx((1.0 - 0.485) / 0.229));
  CHECK(rgb.at(2, 0, 1) == doctest::Approx((1.0 - 0.406) / 0.225));
  CHECK(rgb.at(1, 1, 0) == 0.0f);  // padding
  CHECK(rgb.at(0, 0, 2) == 0.0f);
  const FloatImage bgr = fiber::io::normalize_image(image, fiber::io::fine_grained_normalization());
  CHECK(bgr.at(0, 0, 0) == doctest::Approx((10 - 103.53) / 57.375));  // B first
  CHECK(bgr.at(2, 0, 0) == doctest::Approx((255 - 123.675) / 58.395));
  CHECK(fiber::io::detail::round_half_even(2.5) == 2);
  CHECK(fiber::io::detail::round_half_even(3.5) == 4);
  CHECK(fiber::io::detail::round_half_even(-0.5) == 0);
}

TEST_CASE("preprocessing rejects bad sizes") {
  Image image(4, 3);
  CHECK_THROWS_WITH_AS(fiber::io::preprocess_coarse(image, 0), doctest::Contains("size 0 must be >= 1"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::io::preprocess_fine_grained(image, 0), doctest::Contains("shorter side 0 must be >= 1"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::io::preprocess_fine_grained(Image{}), doctest::Contains("image size 0x0 is empty"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::io::fine_grained_resize_size(1, 100000, 800, 1333),
                       doctest::Contains("gives the unusable size"), fiber::Error);
  CHECK_THROWS_WITH_AS(fiber::io::normalize_image(image, fiber::io::coarse_normalization(), 2, 3),
                       doctest::Contains("padded size 2x3 is smaller than the image 4x3"), fiber::Error);
}
