#pragma once
// Access to the fixtures written by tests/reference/make_images.py: the manifest and raw files.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fiber/io/image.hpp"

namespace fiber::test {

inline std::filesystem::path image_data_dir() { return std::filesystem::path(FIBER_TEST_DATA_DIR) / "images"; }

inline std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("fixture missing: " + path.string());
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline const nlohmann::json& image_manifest() {
  static const nlohmann::json manifest = [] {
    std::ifstream in(image_data_dir() / "manifest.json");
    if (!in) throw std::runtime_error("fixture missing: tests/data/images/manifest.json");
    return nlohmann::json::parse(in);
  }();
  return manifest;
}

// A raw [H, W, 3] fixture as an Image.
inline io::Image read_raw_rgb(const std::string& relative, int width, int height) {
  io::Image image(width, height);
  image.pixels = read_bytes(image_data_dir() / relative);
  if (image.pixels.size() != std::size_t(width) * height * 3)
    throw std::runtime_error("fixture " + relative + " has the wrong size");
  return image;
}

// A raw little-endian float32 fixture.
inline std::vector<float> read_raw_f32(const std::string& relative) {
  const std::vector<std::uint8_t> bytes = read_bytes(image_data_dir() / relative);
  std::vector<float> values(bytes.size() / 4);
  std::memcpy(values.data(), bytes.data(), values.size() * 4);
  return values;
}

// Largest absolute difference between two RGB images of the same size, and how many values differ.
struct PixelDiff {
  int max_abs = 0;
  std::size_t differing = 0;
};
inline PixelDiff compare_pixels(const io::Image& a, const io::Image& b) {
  PixelDiff d;
  for (std::size_t i = 0; i < a.pixels.size() && i < b.pixels.size(); ++i) {
    const int diff = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    d.max_abs = std::max(d.max_abs, diff);
    d.differing += diff != 0;
  }
  return d;
}

}  // namespace fiber::test
