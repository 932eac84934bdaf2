#pragma once
// Decoding of any supported image file (PNG, JPEG) to 8-bit RGB, chosen by the file's signature,
// not its name, as Pillow's Image.open does.
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/image.hpp"
#include "fiber/io/jpeg.hpp"
#include "fiber/io/png.hpp"

namespace fiber::io {

enum class ImageFormat { png, jpeg, unknown };

namespace detail {
inline bool starts_with_bytes(std::span<const std::uint8_t> bytes, std::string_view prefix) {
  if (bytes.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (bytes[i] != static_cast<std::uint8_t>(prefix[i])) return false;
  return true;
}

// Names formats we recognise but do not decode, for a clearer error.
inline std::string_view other_format_name(std::span<const std::uint8_t> bytes) {
  if (starts_with_bytes(bytes, "GIF87a") || starts_with_bytes(bytes, "GIF89a")) return "GIF";
  if (starts_with_bytes(bytes, "BM")) return "BMP";
  if (starts_with_bytes(bytes, std::string_view("II*\0", 4)) || starts_with_bytes(bytes, std::string_view("MM\0*", 4))) return "TIFF";
  if (starts_with_bytes(bytes, "RIFF") && bytes.size() >= 12 && bytes[8] == 'W' && bytes[9] == 'E' &&
      bytes[10] == 'B' && bytes[11] == 'P')
    return "WebP";
  return {};
}

inline std::string leading_bytes_hex(std::span<const std::uint8_t> bytes) {
  std::ostringstream out;
  for (std::size_t i = 0; i < bytes.size() && i < 8; ++i)
    out << (i ? " " : "") << std::hex << std::setw(2) << std::setfill('0') << int(bytes[i]);
  return out.str();
}
}  // namespace detail

// The format the data's signature says, or unknown.
inline ImageFormat sniff_image_format(std::span<const std::uint8_t> bytes) {
  if (detail::starts_with_bytes(bytes, "\x89PNG\r\n\x1a\n")) return ImageFormat::png;
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return ImageFormat::jpeg;
  return ImageFormat::unknown;
}

// Decodes PNG or JPEG data to RGB. `name` (a path or "<memory>") starts every error message.
inline Image decode_image(std::span<const std::uint8_t> bytes, const ImageLimits& limits = {},
                          const std::string& name = "<memory>") {
  FIBER_CHECK(!bytes.empty(), name, ": not an image: the data is empty (0 bytes)");
  switch (sniff_image_format(bytes)) {
    case ImageFormat::png: return decode_png(bytes, limits, name);
    case ImageFormat::jpeg: return decode_jpeg(bytes, limits, name);
    case ImageFormat::unknown: break;
  }
  const std::string_view other = detail::other_format_name(bytes);
  if (!other.empty()) fail(name, ": ", other, " images are not supported; expected PNG or JPEG");
  fail(name, ": not a PNG or JPEG image (first bytes: ", detail::leading_bytes_hex(bytes), ")");
}

// Reads an image file (PNG or JPEG) and decodes it to RGB; errors name the path.
inline Image read_image(const std::filesystem::path& path, const ImageLimits& limits = {}) {
  const std::vector<std::uint8_t> bytes = detail::read_image_file_bytes(path);
  FIBER_CHECK(!bytes.empty(), path.string(), ": not an image: the file is empty (0 bytes)");
  return decode_image(bytes, limits, path.string());
}

}  // namespace fiber::io
