#include <doctest/doctest.h>

#include <iterator>

#include <filesystem>
#include <string>

#include "fiber/io/png.hpp"
#include "image_fixtures.hpp"

using fiber::io::Image;
using fiber::test::image_data_dir;
using fiber::test::image_manifest;

TEST_CASE("PNG decoding gives Pillow's convert('RGB') pixels exactly, for every mode") {
  int checked = 0;
  for (const auto& entry : image_manifest()["decode"]) {
    if (entry["kind"] != "png") continue;
    const std::string name = entry["name"];
    INFO(name, " (", std::string(entry["what"]), ", Pillow mode ", std::string(entry["pillow_mode"]), ")");
    const Image expected = fiber::test::read_raw_rgb(entry["expected"], entry["width"], entry["height"]);
    const Image decoded = fiber::io::read_png(image_data_dir() / std::string(entry["file"]));
    REQUIRE(decoded.width == expected.width);
    REQUIRE(decoded.height == expected.height);
    const auto diff = fiber::test::compare_pixels(decoded, expected);
    CHECK(diff.differing == 0);  // tolerance: none, every byte equal
    ++checked;
  }
  CHECK(checked >= 25);
}

TEST_CASE("PNG encoding round-trips through the decoder") {
  for (auto [w, h] : {std::pair{1, 1}, {7, 3}, {1, 40}, {64, 33}}) {
    Image image(w, h);
    for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = std::uint8_t(i * 37 + i / 5);
    const std::vector<std::uint8_t> bytes = fiber::io::encode_png(image);
    const Image back = fiber::io::decode_png(bytes);
    CHECK(back.width == w);
    CHECK(back.height == h);
    CHECK(back.pixels == image.pixels);
  }
}

TEST_CASE("write_png writes a file read_png reads back, and leaves no temporary behind") {
  const auto dir = std::filesystem::temp_directory_path() / "fiber_test_png_write";
  std::filesystem::remove_all(dir);  // a clean directory: only what write_png leaves counts
  std::filesystem::create_directories(dir);
  const auto path = dir / "out.png";
  Image image(5, 4);
  for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = std::uint8_t(255 - i);
  fiber::io::write_png(image, path);
  CHECK(fiber::io::read_png(path).pixels == image.pixels);
  // No temporary file is left beside it.
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
  CHECK_THROWS_WITH_AS(fiber::io::write_png(image, dir / "no_such_dir" / "x.png"),
                       doctest::Contains("no_such_dir' does not exist"), fiber::Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("PNG encoding rejects an empty or inconsistent image") {
  CHECK_THROWS_WITH_AS(fiber::io::encode_png(Image{}), doctest::Contains("image size 0x0 is empty"), fiber::Error);
  Image bad(4, 4);
  bad.pixels.resize(10);
  CHECK_THROWS_WITH_AS(fiber::io::encode_png(bad), doctest::Contains("pixel buffer holds 10 bytes, expected 48"),
                       fiber::Error);
}
