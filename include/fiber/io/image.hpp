#pragma once
// The plain image types of the input layer: an 8-bit RGB image as decoded and resized, and the
// float CHW image the preprocessing makes for the model. Both are value types over std::vector,
// independent of fiber::Tensor.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/read_file.hpp"

namespace fiber::io {

// 8-bit RGB, interleaved, rows top to bottom: pixels[(y * width + x) * 3 + c].
struct Image {
  static constexpr int channels = 3;
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // [H, W, 3]

  Image() = default;
  Image(int w, int h) : width(w), height(h), pixels(std::size_t(w) * std::size_t(h) * 3) {}

  std::size_t row_bytes() const { return std::size_t(width) * 3; }
  std::uint8_t* row(int y) { return pixels.data() + std::size_t(y) * row_bytes(); }
  const std::uint8_t* row(int y) const { return pixels.data() + std::size_t(y) * row_bytes(); }
  std::uint8_t& at(int x, int y, int c) { return row(y)[std::size_t(x) * 3 + c]; }
  std::uint8_t at(int x, int y, int c) const { return row(y)[std::size_t(x) * 3 + c]; }
  bool empty() const { return width == 0 || height == 0; }
};

// Float image, planar: data[(c * height + y) * width + x]. Becomes a [C, H, W] tensor.
struct FloatImage {
  int channels = 0;
  int height = 0;
  int width = 0;
  std::vector<float> data;  // [C, H, W]

  FloatImage() = default;
  FloatImage(int c, int h, int w)
      : channels(c), height(h), width(w), data(std::size_t(c) * std::size_t(h) * std::size_t(w), 0.0f) {}

  float& at(int c, int y, int x) { return data[(std::size_t(c) * height + y) * width + x]; }
  float at(int c, int y, int x) const { return data[(std::size_t(c) * height + y) * width + x]; }
};

// Limits that bound what a decoder or resize may allocate. The default pixel limit is Pillow's
// decompression-bomb error threshold (2 * Image.MAX_IMAGE_PIXELS = 178,956,970 pixels, ~512 MiB
// as RGB), so anything Pillow opens without an error we open too.
struct ImageLimits {
  static constexpr std::uint64_t pillow_max_pixels = 178956970;
  std::uint64_t max_pixels = pillow_max_pixels;
};

namespace detail {

// Checks a width x height against the limits; `what` names the file and the field.
inline void check_image_size(std::uint64_t width, std::uint64_t height, const ImageLimits& limits,
                             const std::string& what) {
  FIBER_CHECK(width > 0 && height > 0, what, ": image size ", width, "x", height,
              " is empty; expected width and height >= 1");
  FIBER_CHECK(width <= std::uint64_t(INT32_MAX) && height <= std::uint64_t(INT32_MAX) &&
                  width * height <= limits.max_pixels,
              what, ": image size ", width, "x", height, " (", width * height,
              " pixels) is over the limit of ", limits.max_pixels,
              " pixels (fiber::io::ImageLimits::max_pixels)");
}

// The whole file as bytes; errors name the path.
inline std::vector<std::uint8_t> read_image_file_bytes(const std::filesystem::path& path) {
  return fiber::detail::read_whole_file<std::vector<std::uint8_t>>(path, "image");
}

}  // namespace detail
}  // namespace fiber::io
