#include <doctest/doctest.h>

#include "fiber/text/char_class.hpp"
#include "text_fixtures.hpp"

using namespace fiber::text;

TEST_CASE("char classes agree with HF tokenizers at every run boundary of the tables") {
  // Probes: each table boundary and the code point before it, classified by HF's own
  // pre-tokenizer (tests/reference/make_unicode_tables.py), so a shifted or missing run fails.
  const auto j = testing::load_json("unicode_classes.json");
  CHECK(j["unicode_version"] == detail::unicode_tables_version);
  const auto& probes = j["probes"];
  REQUIRE(probes.size() > 2000);
  int mismatches = 0;
  for (const auto& p : probes) {
    const auto cp = p[0].get<std::uint32_t>();
    const auto expected = static_cast<CharClass>(p[1].get<int>());
    if (char_class(cp) != expected) {
      if (++mismatches <= 10) FAIL_CHECK("U+", std::hex, cp, ": class ", int(char_class(cp)), " expected ", int(expected));
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("char classes of well-known characters") {
  CHECK(char_class(U'a') == CharClass::letter);
  CHECK(char_class(U'Z') == CharClass::letter);
  CHECK(char_class(0x4F60) == CharClass::letter);   // 你
  CHECK(char_class(0x0301) == CharClass::other);    // combining acute: Mn, not a letter
  CHECK(char_class(U'7') == CharClass::number);
  CHECK(char_class(0x00BD) == CharClass::number);   // ½ (No)
  CHECK(char_class(0x216B) == CharClass::number);   // Ⅻ (Nl)
  CHECK(char_class(U' ') == CharClass::space);
  CHECK(char_class(0x00A0) == CharClass::space);    // no-break space
  CHECK(char_class(0x3000) == CharClass::space);    // ideographic space
  CHECK(char_class(0x180E) == CharClass::other);    // not White_Space since Unicode 6.3
  CHECK(char_class(0x200B) == CharClass::other);    // zero width space is Cf
  CHECK(char_class(0x1F600) == CharClass::other);   // emoji
  CHECK(char_class(0x10D50) == CharClass::letter);  // Garay, new in Unicode 16.0
  CHECK(char_class(0x10940) == CharClass::other);   // Sidetic, Unicode 17.0: unassigned in 16.0
  CHECK(char_class(0x110000) == CharClass::other);  // beyond Unicode
}
