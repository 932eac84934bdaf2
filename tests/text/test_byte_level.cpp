#include <doctest/doctest.h>

#include <set>

#include "fiber/text/byte_level.hpp"

using namespace fiber::text;

TEST_CASE("byte-level alphabet: GPT-2's fixed points") {
  CHECK(byte_level.to_char(' ') == 0x120);   // Ġ
  CHECK(byte_level.to_char('\n') == 0x10A);  // Ċ
  CHECK(byte_level.to_char(0) == 0x100);
  CHECK(byte_level.to_char('!') == U'!');
  CHECK(byte_level.to_char(0xAD) == 0x143);  // soft hyphen: the last remapped byte
  CHECK(byte_level.to_char(0xFF) == 0xFF);
  CHECK(byte_level.to_byte(0x120) == ' ');
  CHECK(byte_level.to_byte(0x144) == -1);
  CHECK(byte_level.to_byte(0x20) == -1);     // a real space is not in the alphabet
}

TEST_CASE("byte-level alphabet is a bijection and round-trips every byte") {
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const char32_t c = byte_level.to_char(static_cast<std::uint8_t>(b));
    CHECK(seen.insert(c).second);
    CHECK(byte_level.to_byte(c) == b);
  }
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string back;
  CHECK(byte_level.decode(byte_level.encode(all), back));
  CHECK(back == all);
  std::string out;
  CHECK_FALSE(byte_level.decode("\xE4\xBD\xA0", out));  // 你 is not in the alphabet
}
