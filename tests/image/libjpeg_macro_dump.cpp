// Not compiled: preprocessed with -dM -E (tests/image/CMakeLists.txt), which writes out every
// macro defined at its end. test_jpeg_macros_hidden.cpp compares the four lists, so the check
// does not depend on which names fiber/io/libjpeg_macros.hpp happens to know.
#include <cstddef>
#include <cstdio>
#if FIBER_MACRO_DUMP == 1  // libjpeg alone: the macros its headers define
#include <jpeglib.h>
#elif FIBER_MACRO_DUMP == 2  // fiber alone: none of them may be left
#include <fiber/fiber.hpp>
#elif FIBER_MACRO_DUMP == 3  // libjpeg, then fiber: all of them unchanged
#include <jpeglib.h>
#include <fiber/fiber.hpp>
#endif
