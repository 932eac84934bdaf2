// libFuzzer target for the JPEG decoder: any input must either decode or throw fiber::Error;
// anything else (a crash, a sanitizer report, another exception, libjpeg calling exit()) is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fiber/io/jpeg.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fiber::io::ImageLimits limits;
  // 512x512: a garbage JPEG with a big header still decodes every pixel (as grey), so a larger
  // limit makes runs slow without reaching new code; the limit check itself is exercised.
  limits.max_pixels = std::uint64_t(1) << 18;
  try {
    const fiber::io::Image image = fiber::io::decode_jpeg(std::span<const std::uint8_t>(data, size), limits);
    if (image.pixels.size() != image.row_bytes() * std::size_t(image.height)) __builtin_trap();
  } catch (const fiber::Error&) {
  }
  return 0;
}
