// `fiber resize` end to end: the PNG it writes holds Pillow's resize of the decoded input.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "fiber/io/png.hpp"
#include "image_fixtures.hpp"

#ifdef FIBER_CLI_PATH
TEST_CASE("fiber resize writes Pillow's resize of the image") {
  const auto dir = std::filesystem::temp_directory_path() / "fiber_test_resize_cli";
  std::filesystem::create_directories(dir);
  int checked = 0;
  for (const auto& entry : fiber::test::image_manifest()["resize"]) {
    if (entry["input"] != "resize/in_97x61.rgb") continue;
    // The CLI reads image files: give it the raw input as a PNG (lossless, so the same pixels).
    const auto input = dir / "in_97x61.png";
    fiber::io::write_png(fiber::test::read_raw_rgb(entry["input"], entry["in_width"], entry["in_height"]), input);
    const int w = entry["width"], h = entry["height"];
    const std::string filter = entry["filter"];
    const auto output = dir / "out.png";
    const std::string command = std::string("\"") + FIBER_CLI_PATH + "\" resize \"" + input.string() + "\" \"" +
                                output.string() + "\" --width " + std::to_string(w) + " --height " +
                                std::to_string(h) + " --filter " + filter + " > /dev/null";
    INFO(command);
    REQUIRE(std::system(command.c_str()) == 0);
    const auto resized = fiber::io::read_png(output);
    const auto expected = fiber::test::read_raw_rgb(entry["expected"], w, h);
    CHECK(resized.pixels == expected.pixels);  // exact
    ++checked;
  }
  CHECK(checked >= 10);
  std::filesystem::remove_all(dir);
}
#endif
