// Macro hygiene: a program that includes fiber is left with none of libjpeg's macros (TRUE,
// FALSE, FAR, LOCAL, GLOBAL, EXTERN, METHODDEF, JMETHOD, DCTSIZE...), although fiber's JPEG
// decoder uses them (fiber/io/libjpeg_macros.hpp). The mirror case is test_jpeg_macros_kept.cpp.
#include <doctest/doctest.h>

#include <fiber/fiber.hpp>

#include <string>
#include <vector>

// fiber did include <jpeglib.h>, so its macros were defined and have been taken away again.
#ifndef JPEGLIB_H
#error "fiber.hpp no longer includes <jpeglib.h>; this test would check nothing"
#endif

namespace {
const std::vector<std::string> libjpeg_macros_after_fiber = {
#include "libjpeg_macros_defined.inc"
};
}  // namespace

TEST_CASE("fiber.hpp leaves none of libjpeg's macros defined (TRUE, FALSE, FAR, LOCAL, METHODDEF...)") {
  std::string leaked;
  for (const std::string& name : libjpeg_macros_after_fiber) leaked += name + " ";
  CHECK_MESSAGE(libjpeg_macros_after_fiber.empty(), "still defined: ", leaked);
}

// Including <jpeglib.h> after fiber is harmless: its include guard stays defined, so nothing is
// defined twice, and libjpeg's types and functions are usable. Its macros are not: a program
// that needs them includes <jpeglib.h> before fiber (see docs/images.md).
#include <jpeglib.h>

TEST_CASE("including <jpeglib.h> after fiber still compiles, with libjpeg's types and functions") {
  jpeg_error_mgr errors{};
  CHECK(jpeg_std_error(&errors) == &errors);
  CHECK(bool(errors.error_exit));
  CHECK(libjpeg_macros_after_fiber.empty());
}
