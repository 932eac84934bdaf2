#include <doctest/doctest.h>

#include "fiber/text/utf8.hpp"
#include "text_fixtures.hpp"

using namespace fiber::text;

TEST_CASE("utf8_next reads well-formed sequences of every length") {
  auto check = [](std::string_view s, char32_t cp, std::uint32_t len) {
    const Utf8Step step = utf8_next(s, 0);
    CHECK(step.valid);
    CHECK(step.code_point == cp);
    CHECK(step.length == len);
  };
  check("A", U'A', 1);
  check("\xC3\xA9", 0xE9, 2);              // é
  check("\xE4\xBD\xA0", 0x4F60, 3);        // 你
  check("\xF0\x9F\x98\x80", 0x1F600, 4);   // 😀
  check("\xF4\x8F\xBF\xBF", 0x10FFFF, 4);  // last code point
  check("\xEE\x80\x80", 0xE000, 3);        // just after the surrogates
}

TEST_CASE("utf8_next gives the maximal ill-formed subpart") {
  auto check = [](std::string_view s, std::uint32_t len) {
    const Utf8Step step = utf8_next(s, 0);
    CHECK_FALSE(step.valid);
    CHECK(step.code_point == replacement_character);
    CHECK(step.length == len);
  };
  check("\x80", 1);              // lone continuation
  check("\xC0\xAF", 1);          // C0 is never a lead byte (overlong)
  check("\xE0\x80\xAF", 1);      // overlong 3-byte: E0 needs A0..BF next
  check("\xED\xA0\x80", 1);      // surrogate: ED needs 80..9F next
  check("\xF4\x90\x80\x80", 1);  // above U+10FFFF
  check("\xF5\x80", 1);
  check("\xE3\x80", 2);          // truncated at the end: both bytes are one subpart
  check("\xE3\x80X", 2);
  check("\xF0\x9F\x98", 3);
  check("\xC3(", 1);
}

TEST_CASE("utf8_invalid_offset finds the first bad byte past an ASCII run") {
  CHECK(utf8_invalid_offset("plain ascii text, longer than eight bytes") == std::string_view::npos);
  CHECK(utf8_invalid_offset("caf\xC3\xA9 ok") == std::string_view::npos);
  CHECK(utf8_invalid_offset("0123456789abcdef\xFFtail") == 16);
  CHECK(utf8_invalid_offset("ab\xE3\x80") == 2);
  CHECK(utf8_invalid_offset("") == std::string_view::npos);
}

TEST_CASE("utf8_check: replace policy reports, error policy throws with the byte offset") {
  CHECK(utf8_check("fine", InvalidUtf8::error, "t"));
  CHECK_FALSE(utf8_check("a\xFF", InvalidUtf8::replace, "t"));
  CHECK_THROWS_WITH_AS(utf8_check("abc\xFF", InvalidUtf8::error, "input"),
                       doctest::Contains("input: invalid UTF-8 at byte 3 (byte 0xff)"), fiber::Error);
}

TEST_CASE("utf8_replace_invalid equals Python's bytes.decode(errors='replace') on the fixture") {
  const auto cases = testing::load_json("roberta_invalid_utf8.json");
  REQUIRE(cases.size() >= 50);
  for (const auto& c : cases) {
    const std::string raw = testing::from_hex(c["hex"].get<std::string>());
    CAPTURE(c["hex"].get<std::string>());
    CHECK(utf8_replace_invalid(raw) == c["replaced"].get<std::string>());
    const long long first = c["first_invalid"].get<long long>();
    const std::size_t ours = utf8_invalid_offset(raw);
    CHECK(first == (ours == std::string_view::npos ? -1LL : static_cast<long long>(ours)));
  }
}

TEST_CASE("utf8_length counts code points") {
  CHECK(utf8_length("") == 0);
  CHECK(utf8_length("a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80") == 4);
}
