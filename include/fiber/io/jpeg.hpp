#pragma once
// JPEG decoding to 8-bit RGB as Pillow's Image.open(p).convert("RGB") does, with libjpeg-turbo's
// default settings (accurate integer IDCT, fancy upsampling), which are Pillow's:
//   1 component   grey, replicated to RGB
//   3 components  libjpeg's colour conversion to RGB (YCbCr, or RGB when the file says so)
//   4 components  CMYK/YCCK decoded to CMYK, inverted (Pillow's "CMYK;I": it assumes the Adobe
//                 convention) and converted with Pillow's cmyk2rgb
// No EXIF rotation. Pixels equal Pillow's when both use the same libjpeg-turbo; a different
// libjpeg-turbo may differ slightly (see docs/images.md for what we measured).
//
// libjpeg reports errors through a callback that must not return; ours longjmps back into the
// two "guarded" functions below, which hold only plain C data, and the C++ caller turns their
// false return into a fiber::Error. So no C++ object with a destructor is ever jumped over.
//
// libjpeg's headers define many macros (TRUE, FALSE, FAR, LOCAL, GLOBAL, METHODDEF...);
// fiber/io/libjpeg_macros.hpp saves their state before <jpeglib.h> and restores it at the end
// of this file, so they do not leak into programs that include fiber (see that header).
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/image.hpp"

#include "fiber/io/libjpeg_macros.hpp"  // saves the state of libjpeg's macro names
#include <jpeglib.h>

namespace fiber::io {

// Progressive JPEGs can hold thousands of tiny scans that take minutes to decode (a known
// denial of service); real encoders write about 10. More than this many scans is an error.
inline constexpr int jpeg_max_scans = 500;

namespace detail {

// All libjpeg state of one decode: plain C data, see the comment at the top.
struct JpegDecoder {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr errors;
  jpeg_source_mgr source;
  jpeg_progress_mgr progress;
  std::jmp_buf on_error;
  char message[JMSG_LENGTH_MAX + 64];
  bool created;
};

inline JpegDecoder& jpeg_decoder_of(j_common_ptr cinfo) {
  return *static_cast<JpegDecoder*>(cinfo->client_data);
}

[[noreturn]] inline void jpeg_on_error(j_common_ptr cinfo) {
  JpegDecoder& d = jpeg_decoder_of(cinfo);
  (*cinfo->err->format_message)(cinfo, d.message);
  std::longjmp(d.on_error, 1);
}

[[noreturn]] inline void jpeg_fail_truncated(j_decompress_ptr cinfo) {
  JpegDecoder& d = jpeg_decoder_of(reinterpret_cast<j_common_ptr>(cinfo));
  std::snprintf(d.message, sizeof d.message, "truncated (the data ends before the end-of-image marker)");
  std::longjmp(d.on_error, 1);
}

// The source: the whole file, already in memory. libjpeg asks for more data only once the
// buffer is used up, so any request means the file ended before the image did. That is an
// error, as in Pillow ("image file is truncated"), even when only the end-of-image marker is
// missing (libjpeg's own memory source would warn and invent an end-of-image marker).
inline void jpeg_source_start(j_decompress_ptr) {}
inline boolean jpeg_source_fill(j_decompress_ptr cinfo) { jpeg_fail_truncated(cinfo); }
inline void jpeg_source_skip(j_decompress_ptr cinfo, long bytes) {
  if (bytes <= 0) return;
  jpeg_source_mgr& src = *cinfo->src;
  if (static_cast<unsigned long>(bytes) > src.bytes_in_buffer) jpeg_fail_truncated(cinfo);
  src.next_input_byte += bytes;
  src.bytes_in_buffer -= static_cast<std::size_t>(bytes);
}
inline void jpeg_source_end(j_decompress_ptr) {}

inline void jpeg_on_progress(j_common_ptr cinfo) {
  JpegDecoder& d = jpeg_decoder_of(cinfo);
  auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (dinfo->input_scan_number > jpeg_max_scans) {
    std::snprintf(d.message, sizeof d.message, "more than %d scans (fiber::io::jpeg_max_scans)",
                  jpeg_max_scans);
    std::longjmp(d.on_error, 1);
  }
}

// Warnings (corrupt entropy-coded data, extra bytes before a marker) are not printed: libjpeg
// decodes what it can, and Pillow ignores them too.
inline void jpeg_output_nothing(j_common_ptr) {}

// The two functions that call setjmp are never inlined, so the frame longjmp returns to is
// theirs (plain C data only), never their C++ caller's.

// Creates the decompressor and reads the header. False after a libjpeg error (d.message).
[[gnu::noinline]] inline bool jpeg_read_header_guarded(JpegDecoder& d, const std::uint8_t* data, std::size_t size) {
  if (setjmp(d.on_error)) return false;
  d.cinfo.err = jpeg_std_error(&d.errors);
  d.errors.error_exit = jpeg_on_error;
  d.errors.output_message = jpeg_output_nothing;
  d.cinfo.client_data = &d;
  jpeg_create_decompress(&d.cinfo);
  d.created = true;
  d.progress.progress_monitor = jpeg_on_progress;
  d.cinfo.progress = &d.progress;
  d.source.next_input_byte = data;
  d.source.bytes_in_buffer = size;
  d.source.init_source = jpeg_source_start;
  d.source.fill_input_buffer = jpeg_source_fill;
  d.source.skip_input_data = jpeg_source_skip;
  d.source.resync_to_restart = jpeg_resync_to_restart;
  d.source.term_source = jpeg_source_end;
  d.cinfo.src = &d.source;
  jpeg_read_header(&d.cinfo, TRUE);
  return true;
}

// Decodes every row into `out` (rows of `stride` bytes). False after a libjpeg error.
[[gnu::noinline]] inline bool jpeg_decode_guarded(JpegDecoder& d, std::uint8_t* out, std::size_t stride,
                                int components) {
  if (setjmp(d.on_error)) return false;
  jpeg_start_decompress(&d.cinfo);
  if (d.cinfo.output_components != components || d.cinfo.output_width != d.cinfo.image_width ||
      d.cinfo.output_height != d.cinfo.image_height) {
    std::snprintf(d.message, sizeof d.message, "libjpeg output %ux%ux%d differs from the header",
                  d.cinfo.output_width, d.cinfo.output_height, d.cinfo.output_components);
    return false;
  }
  while (d.cinfo.output_scanline < d.cinfo.output_height) {
    JSAMPROW row = out + stride * d.cinfo.output_scanline;
    if (jpeg_read_scanlines(&d.cinfo, &row, 1) != 1) {
      std::snprintf(d.message, sizeof d.message, "libjpeg stopped at row %u", d.cinfo.output_scanline);
      return false;
    }
  }
  jpeg_finish_decompress(&d.cinfo);
  return true;
}

// Owns a JpegDecoder and destroys the libjpeg object however the decode ends.
class JpegDecoderHandle {
 public:
  JpegDecoderHandle() : d_(new JpegDecoder{}) {}
  JpegDecoderHandle(const JpegDecoderHandle&) = delete;
  JpegDecoderHandle& operator=(const JpegDecoderHandle&) = delete;
  ~JpegDecoderHandle() {
    if (d_->created) jpeg_destroy_decompress(&d_->cinfo);
    delete d_;
  }
  JpegDecoder& operator*() { return *d_; }

 private:
  JpegDecoder* d_;
};

// Pillow's cmyk2rgb on the inverted samples: with c = 255 - C and k = 255 - K as stored,
// channel = clip(K - round(c * K / 255)) using Pillow's MULDIV255.
inline std::uint8_t pillow_cmyk_channel(unsigned stored_c, unsigned stored_k) {
  const int nk = int(stored_k);
  const int tmp = int(255 - stored_c) * nk + 128;
  const int v = nk - (((tmp >> 8) + tmp) >> 8);
  return std::uint8_t(v <= 0 ? 0 : v < 256 ? v : 255);
}

}  // namespace detail

// Decodes a JPEG held in memory. `name` (a path or "<memory>") starts every error message.
inline Image decode_jpeg(std::span<const std::uint8_t> bytes, const ImageLimits& limits = {},
                         const std::string& name = "<memory>") {
  using namespace detail;
  FIBER_CHECK(!bytes.empty(), name, ": JPEG decode failed: the data is empty (0 bytes)");
  JpegDecoderHandle handle;
  JpegDecoder& d = *handle;
  if (!jpeg_read_header_guarded(d, bytes.data(), bytes.size()))
    fail(name, ": JPEG header read failed: ", d.message);

  const int components = d.cinfo.num_components;
  FIBER_CHECK(components == 1 || components == 3 || components == 4, name,
              ": JPEG has ", components, " components; expected 1 (grey), 3 (colour) or 4 (CMYK)");
  check_image_size(d.cinfo.image_width, d.cinfo.image_height, limits, name);
  d.cinfo.out_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;

  Image image(int(d.cinfo.image_width), int(d.cinfo.image_height));
  if (components == 3) {
    if (!jpeg_decode_guarded(d, image.pixels.data(), image.row_bytes(), 3))
      fail(name, ": JPEG decode failed: ", d.message);
    return image;
  }
  const std::size_t pixels = std::size_t(image.width) * std::size_t(image.height);
  std::vector<std::uint8_t> stored(pixels * std::size_t(components));
  if (!jpeg_decode_guarded(d, stored.data(), std::size_t(image.width) * components, components))
    fail(name, ": JPEG decode failed: ", d.message);
  std::uint8_t* out = image.pixels.data();
  if (components == 1) {
    for (std::size_t i = 0; i < pixels; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = stored[i];
  } else {
    for (std::size_t i = 0; i < pixels; ++i) {
      const std::uint8_t* cmyk = &stored[4 * i];
      for (int c = 0; c < 3; ++c) out[3 * i + c] = pillow_cmyk_channel(cmyk[c], cmyk[3]);
    }
  }
  return image;
}

// Reads and decodes a JPEG file.
inline Image read_jpeg(const std::filesystem::path& path, const ImageLimits& limits = {}) {
  const std::vector<std::uint8_t> bytes = detail::read_image_file_bytes(path);
  return decode_jpeg(bytes, limits, path.string());
}

}  // namespace fiber::io

#include "fiber/io/libjpeg_macros.hpp"  // restores the state of libjpeg's macro names
