#pragma once
// PNG decoding to 8-bit RGB exactly as Pillow's Image.open(p).convert("RGB") does, and PNG
// encoding of RGB images. libspng does the parsing, CRC checks and inflating; we ask it for the
// samples as stored (SPNG_FMT_PNG, no gamma, no tRNS) and convert them the way Pillow does:
//   grey 1 bit        bit ? 255 : 0                 (mode "1")
//   grey 2 / 4 bit    v * 0x55 / v * 0x11           (raw modes L;2, L;4)
//   grey 16 bit       v > 255 ? 255 : v             (mode I;16, then Convert.c I16_RGB clips)
//   RGB/LA/RGBA 16    the high byte of each sample  (raw modes RGB;16B, LA;16B, RGBA;16B)
//   palette           PLTE[i]; indices past the PLTE give (0, 0, 0) as Pillow's zeroed palette
//   alpha, tRNS       dropped, never composited; gAMA, iCCP, sRGB ignored (Pillow ignores them)
// CRC errors are errors in every chunk libspng reads, IDAT included (Pillow skips IDAT CRCs), except
// the last IDAT's: libspng stops reading at the end of the zlib stream.
#include <spng.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/atomic_file.hpp"
#include "fiber/io/image.hpp"

namespace fiber::io {

namespace detail {

struct SpngContextDeleter {
  void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
};
using SpngContext = std::unique_ptr<spng_ctx, SpngContextDeleter>;

// A message for a libspng error code: our words for the common failures, libspng's otherwise.
inline std::string spng_error_text(int code) {
  switch (code) {
    case SPNG_ESIGNATURE: return "not a PNG file (bad signature)";
    case SPNG_EWIDTH: return "IHDR width is 0 or over 2^31-1";
    case SPNG_EHEIGHT: return "IHDR height is 0 or over 2^31-1";
    case SPNG_EUSER_WIDTH:
    case SPNG_EUSER_HEIGHT: return "IHDR size is over the decoder's limit";
    case SPNG_ECHUNK_CRC: return "bad CRC in a chunk (file corrupted)";
    case SPNG_EIDAT_TOO_SHORT: return "image data (IDAT) too short for the IHDR size";
    case SPNG_EIDAT_STREAM: return "corrupt zlib stream in IDAT";
    case SPNG_EZLIB: return "zlib error while inflating IDAT";
    case SPNG_EFILTER: return "invalid row filter type in the image data";
    case SPNG_EOF:
    case SPNG_IO_EOF: return "truncated (end of data before the image was complete)";
    case SPNG_ECHUNK_SIZE: return "chunk length is out of range (truncated or corrupted)";
    case SPNG_ECHUNK_UNKNOWN_CRITICAL: return "unknown critical chunk";
    case SPNG_EMEM: return "out of memory";
    case SPNG_ECHUNK_POS: return "chunk out of order";
    case SPNG_EIHDR_SIZE: return "IHDR chunk has the wrong length";
    case SPNG_ENOIHDR: return "missing IHDR chunk";
    default: return spng_strerror(code);
  }
}

inline void check_spng(int code, const std::string& name, const char* step) {
  if (code != 0)
    fail(name, ": PNG ", step, " failed: ", spng_error_text(code), " (libspng error ", code, ")");
}

inline std::uint16_t load_u16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);  // SPNG_FMT_PNG gives 16-bit samples in host order
  return v;
}

// One decoded row (as stored, packed for depths < 8) to RGB.
inline void png_row_to_rgb(const std::uint8_t* in, std::uint8_t* out, int width, int color_type,
                           int depth, const spng_plte& plte) {
  auto sample = [&](int i) -> unsigned {  // sub-byte samples, MSB first
    const int bit = i * depth;
    return (in[bit >> 3] >> (8 - depth - (bit & 7))) & ((1u << depth) - 1);
  };
  for (int x = 0; x < width; ++x, out += 3) {
    switch (color_type) {
      case SPNG_COLOR_TYPE_GRAYSCALE: {
        unsigned v;
        if (depth == 16) {
          const unsigned s = load_u16(in + 2 * x);
          v = s > 255 ? 255 : s;
        } else if (depth == 8) {
          v = in[x];
        } else {
          v = sample(x) * (depth == 1 ? 255u : depth == 2 ? 0x55u : 0x11u);
        }
        out[0] = out[1] = out[2] = std::uint8_t(v);
        break;
      }
      case SPNG_COLOR_TYPE_TRUECOLOR:
        for (int c = 0; c < 3; ++c)
          out[c] = depth == 16 ? std::uint8_t(load_u16(in + 6 * x + 2 * c) >> 8) : in[3 * x + c];
        break;
      case SPNG_COLOR_TYPE_INDEXED: {
        const unsigned i = depth == 8 ? in[x] : sample(x);
        if (i < plte.n_entries) {
          out[0] = plte.entries[i].red;
          out[1] = plte.entries[i].green;
          out[2] = plte.entries[i].blue;
        } else {
          out[0] = out[1] = out[2] = 0;
        }
        break;
      }
      case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA:
        out[0] = out[1] = out[2] = depth == 16 ? std::uint8_t(load_u16(in + 4 * x) >> 8) : in[2 * x];
        break;
      case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA:
        for (int c = 0; c < 3; ++c)
          out[c] = depth == 16 ? std::uint8_t(load_u16(in + 8 * x + 2 * c) >> 8) : in[4 * x + c];
        break;
    }
  }
}

}  // namespace detail

// Decodes a PNG held in memory. `name` (a path or "<memory>") starts every error message.
inline Image decode_png(std::span<const std::uint8_t> bytes, const ImageLimits& limits = {},
                        const std::string& name = "<memory>") {
  using namespace detail;
  FIBER_CHECK(!bytes.empty(), name, ": PNG decode failed: the data is empty (0 bytes)");
  SpngContext ctx(spng_ctx_new(0));
  FIBER_CHECK(ctx != nullptr, name, ": PNG decode failed: cannot create a libspng context");
  check_spng(spng_set_crc_action(ctx.get(), SPNG_CRC_ERROR, SPNG_CRC_ERROR), name, "setup");
  // Bound what ancillary chunks (text, ICC profiles) may make libspng allocate.
  check_spng(spng_set_chunk_limits(ctx.get(), std::size_t(64) << 20, std::size_t(64) << 20), name, "setup");
  check_spng(spng_set_png_buffer(ctx.get(), bytes.data(), bytes.size()), name, "setup");

  spng_ihdr ihdr{};
  check_spng(spng_get_ihdr(ctx.get(), &ihdr), name, "header read");
  check_image_size(ihdr.width, ihdr.height, limits, name);

  spng_plte plte{};
  if (ihdr.color_type == SPNG_COLOR_TYPE_INDEXED)
    check_spng(spng_get_plte(ctx.get(), &plte), name, "palette (PLTE) read");

  std::size_t decoded_size = 0;
  check_spng(spng_decoded_image_size(ctx.get(), SPNG_FMT_PNG, &decoded_size), name, "size query");
  const std::size_t stride = decoded_size / ihdr.height;
  const int samples = ihdr.color_type == SPNG_COLOR_TYPE_TRUECOLOR          ? 3
                      : ihdr.color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA  ? 4
                      : ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA ? 2
                                                                           : 1;
  FIBER_CHECK(stride * ihdr.height == decoded_size &&
                  stride >= (std::size_t(ihdr.width) * samples * ihdr.bit_depth + 7) / 8,
              name, ": PNG decode failed: libspng's decoded size ", decoded_size,
              " does not fit the IHDR (", ihdr.width, "x", ihdr.height, ")");
  // Deflate expands at most ~1032:1, so a file this short cannot hold the announced pixels:
  // refuse before allocating them (a lying IHDR would otherwise cost a huge allocation).
  FIBER_CHECK(decoded_size / 1100 <= bytes.size(), name, ": PNG decode failed: IHDR announces ",
              ihdr.width, "x", ihdr.height, " pixels (", decoded_size, " bytes), more than ", bytes.size(),
              " bytes of PNG can hold; the file is truncated or its IHDR is wrong");
  Image image(int(ihdr.width), int(ihdr.height));
  if (ihdr.color_type == SPNG_COLOR_TYPE_TRUECOLOR && ihdr.bit_depth == 8 && decoded_size == image.pixels.size()) {
    // Stored as RGB8 already: decode in place.
    check_spng(spng_decode_image(ctx.get(), image.pixels.data(), image.pixels.size(), SPNG_FMT_PNG, 0), name, "decode");
    return image;
  }
  std::vector<std::uint8_t> stored(decoded_size);
  check_spng(spng_decode_image(ctx.get(), stored.data(), stored.size(), SPNG_FMT_PNG, 0), name, "decode");
  for (int y = 0; y < image.height; ++y)
    png_row_to_rgb(stored.data() + stride * y, image.row(y), image.width, ihdr.color_type,
                   ihdr.bit_depth, plte);
  return image;
}

// Encodes an RGB image as an 8-bit truecolour PNG.
inline std::vector<std::uint8_t> encode_png(const Image& image, const std::string& name = "<memory>") {
  using namespace detail;
  FIBER_CHECK(!image.empty(), name, ": PNG encode failed: image size ", image.width, "x",
              image.height, " is empty");
  FIBER_CHECK(image.pixels.size() == image.row_bytes() * std::size_t(image.height), name,
              ": PNG encode failed: pixel buffer holds ", image.pixels.size(), " bytes, expected ",
              image.row_bytes() * std::size_t(image.height), " for ", image.width, "x", image.height, " RGB");
  SpngContext ctx(spng_ctx_new(SPNG_CTX_ENCODER));
  FIBER_CHECK(ctx != nullptr, name, ": PNG encode failed: cannot create a libspng context");
  check_spng(spng_set_option(ctx.get(), SPNG_ENCODE_TO_BUFFER, 1), name, "encoder setup");
  spng_ihdr ihdr{};
  ihdr.width = std::uint32_t(image.width);
  ihdr.height = std::uint32_t(image.height);
  ihdr.bit_depth = 8;
  ihdr.color_type = SPNG_COLOR_TYPE_TRUECOLOR;
  check_spng(spng_set_ihdr(ctx.get(), &ihdr), name, "encoder setup");
  check_spng(spng_encode_image(ctx.get(), image.pixels.data(), image.pixels.size(), SPNG_FMT_PNG,
                               SPNG_ENCODE_FINALIZE),
             name, "encode");
  std::size_t size = 0;
  int error = 0;
  std::unique_ptr<void, decltype(&std::free)> buffer(spng_get_png_buffer(ctx.get(), &size, &error), &std::free);
  check_spng(error, name, "encode");
  FIBER_CHECK(buffer != nullptr, name, ": PNG encode failed: libspng returned no buffer");
  const auto* p = static_cast<const std::uint8_t*>(buffer.get());
  return std::vector<std::uint8_t>(p, p + size);
}

// Writes an RGB image as a PNG file, atomically (io::AtomicFile: a uniquely named temporary in the
// same directory, fsync, rename), so a failed write never leaves a half-written image behind.
inline void write_png(const Image& image, const std::filesystem::path& path) {
  const std::vector<std::uint8_t> bytes = encode_png(image, path.string());
  AtomicFile file(path);
  file.write(std::as_bytes(std::span(bytes)));
  file.commit();
}

// Reads and decodes a PNG file.
inline Image read_png(const std::filesystem::path& path, const ImageLimits& limits = {}) {
  const std::vector<std::uint8_t> bytes = detail::read_image_file_bytes(path);
  return decode_png(bytes, limits, path.string());
}

}  // namespace fiber::io
