// Macro hygiene, the other way round: a program that includes <jpeglib.h> before fiber keeps
// every libjpeg macro exactly as it was, and its own libjpeg code, written with those macros
// after fiber, compiles and decodes as fiber does. The mirror case is test_jpeg_macros_hidden.cpp.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdio>
#include <jpeglib.h>

#include <string>
#include <vector>

namespace {
const std::vector<std::string> libjpeg_macros_before_fiber = {
#include "libjpeg_macros_defined.inc"
};
}  // namespace

#include <fiber/fiber.hpp>

#include "image_fixtures.hpp"

namespace {
const std::vector<std::string> libjpeg_macros_after_fiber = {
#include "libjpeg_macros_defined.inc"
};

static_assert(TRUE == 1 && FALSE == 0, "jmorecfg.h's values");

// The program's own libjpeg code, in libjpeg's idiom (METHODDEF, LOCAL, TRUE, JPEG_HEADER_OK).
METHODDEF(void) print_nothing(j_common_ptr) {}

LOCAL(fiber::io::Image) decode_with_libjpeg(const std::vector<std::uint8_t>& bytes) {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr errors;
  cinfo.err = jpeg_std_error(&errors);
  errors.output_message = print_nothing;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  const int header = jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  fiber::io::Image image(int(cinfo.output_width), int(cinfo.output_height));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = image.pixels.data() + image.row_bytes() * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (header != JPEG_HEADER_OK) image.width = 0;
  return image;
}
}  // namespace

TEST_CASE("<jpeglib.h> before fiber: every libjpeg macro is still defined after fiber.hpp") {
  std::string before, after;
  for (const std::string& name : libjpeg_macros_before_fiber) before += name + " ";
  for (const std::string& name : libjpeg_macros_after_fiber) after += name + " ";
  INFO("before fiber: ", before);
  INFO("after fiber:  ", after);
  CHECK(libjpeg_macros_before_fiber.size() >= 40);  // jpeglib.h was really included first
  CHECK(libjpeg_macros_before_fiber == libjpeg_macros_after_fiber);
}

TEST_CASE("<jpeglib.h> before fiber: the program's own libjpeg code decodes as fiber does") {
  const auto bytes = fiber::test::read_bytes(fiber::test::image_data_dir() / "decode/jpeg_420.jpg");
  const fiber::io::Image ours = fiber::io::decode_jpeg(bytes);
  const fiber::io::Image theirs = decode_with_libjpeg(bytes);
  REQUIRE(theirs.width == ours.width);
  REQUIRE(theirs.height == ours.height);
  CHECK(theirs.pixels == ours.pixels);
}
