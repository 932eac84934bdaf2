// printable() and excerpt(): file text made safe to print and bounded in messages (issue 14).
#include <doctest/doctest.h>

#include <string>

#include "fiber/core/printable.hpp"

TEST_CASE("printable escapes controls and ill-formed UTF-8, keeps everything else") {
  using fiber::printable;
  CHECK(printable("layer.0.weight") == "layer.0.weight");
  CHECK(printable("a\nb\tc\rd") == "a\\nb\\tc\\rd");
  CHECK(printable("\x1b[2J\x07\x7f") == "\\x1b[2J\\x07\\x7f");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("caf\xc3\xa9 \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xf0\x9f\x98\x80");  // café 😀
  CHECK(printable("\xc2\x9b" "31m") == "\\u009b31m");                                // C1 CSI
  CHECK(printable("\xff\xc3") == "\\xff\\xc3");                                      // ill-formed, cut
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");                             // a surrogate
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");                                      // overlong '/'
}

TEST_CASE("excerpt bounds a value to its first bytes, at a character boundary") {
  using fiber::excerpt;
  CHECK(excerpt("short") == "short");
  CHECK(excerpt(std::string(100, 'x')) == std::string(100, 'x'));
  CHECK(excerpt(std::string(10 << 20, 'x')) == std::string(100, 'x') + "\xe2\x80\xa6 (10485760 bytes)");
  std::string accents;
  for (int i = 0; i < 60; ++i) accents += "\xc3\xa9";  // 120 bytes of 'é'
  CHECK(excerpt(accents, 5) == "\xc3\xa9\xc3\xa9\xe2\x80\xa6 (120 bytes)");
  CHECK(excerpt("a\nb" + std::string(200, 'c'), 3) == "a\\nb\xe2\x80\xa6 (203 bytes)");
}
