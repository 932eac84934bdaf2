// libFuzzer target for the PNG decoder: any input must either decode or throw fiber::Error;
// anything else (a crash, a sanitizer report, another exception) is a bug. What decodes is also
// resized to a size taken from the input, so the resizer sees odd shapes too.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fiber/io/png.hpp"
#include "fiber/io/resize.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fiber::io::ImageLimits limits;
  limits.max_pixels = std::uint64_t(1) << 22;  // keeps each run fast; the check itself is exercised
  try {
    const fiber::io::Image image = fiber::io::decode_png(std::span<const std::uint8_t>(data, size), limits);
    if (image.pixels.size() != image.row_bytes() * std::size_t(image.height)) __builtin_trap();
    if (std::size_t(image.width) * image.height <= 4096 && size >= 2) {
      const int width = 1 + data[size - 1] % 48, height = 1 + data[size - 2] % 48;
      const auto filter = data[size - 1] & 1 ? fiber::io::ResizeFilter::bicubic : fiber::io::ResizeFilter::bilinear;
      const fiber::io::Image resized = fiber::io::resize(image, width, height, filter);
      if (resized.width != width || resized.height != height) __builtin_trap();
    }
  } catch (const fiber::Error&) {
  }
  return 0;
}
