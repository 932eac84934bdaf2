#include <doctest/doctest.h>

#include "fiber/text/pretokenize.hpp"

using namespace fiber::text;

namespace {
std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  std::size_t expected_begin = 0;
  gpt2_pretokenize(text, [&](std::size_t b, std::size_t e) {
    CHECK(b == expected_begin);  // pieces tile the text
    CHECK(e > b);
    expected_begin = e;
    out.emplace_back(text.substr(b, e - b));
  });
  CHECK(expected_begin == text.size());
  return out;
}
using V = std::vector<std::string>;
}  // namespace

TEST_CASE("GPT-2 pattern: words take one leading space") {
  CHECK(pieces("Hello world") == V{"Hello", " world"});
  CHECK(pieces("Hello  world") == V{"Hello", " ", " world"});
  CHECK(pieces(" a") == V{" a"});
  CHECK(pieces("") == V{});
}

TEST_CASE("GPT-2 pattern: contractions are lowercase-only and come first") {
  CHECK(pieces("it's") == V{"it", "'s"});
  CHECK(pieces("we're they've I'm you'll he'd don't") ==
        V{"we", "'re", " they", "'ve", " I", "'m", " you", "'ll", " he", "'d", " don", "'t"});
  CHECK(pieces("IT'S") == V{"IT", "'", "S"});
  CHECK(pieces("'st") == V{"'s", "t"});   // the pattern does not check what follows
  CHECK(pieces("''s") == V{"''", "s"});   // at the first quote, the punctuation run wins
  CHECK(pieces("x 's") == V{"x", " '", "s"});
}

TEST_CASE("GPT-2 pattern: numbers, punctuation, and mixed classes split") {
  CHECK(pieces("abc123def") == V{"abc", "123", "def"});
  CHECK(pieces(" 42!?") == V{" 42", "!?"});
  CHECK(pieces("a, b.") == V{"a", ",", " b", "."});
  CHECK(pieces("caf\xC3\xA9") == V{"caf\xC3\xA9"});
  CHECK(pieces("e\xCC\x81") == V{"e", "\xCC\x81"});  // a combining mark is not \p{L}
}

TEST_CASE("GPT-2 pattern: white space gives back its last character before a word") {
  CHECK(pieces("a   b") == V{"a", "  ", " b"});
  CHECK(pieces("a\n\nb") == V{"a", "\n", "\n", "b"});
  CHECK(pieces("a\nb") == V{"a", "\n", "b"});
  CHECK(pieces("a  ") == V{"a", "  "});       // a run reaching the end stays whole
  CHECK(pieces("a \n ") == V{"a", " \n "});
  CHECK(pieces("\t x") == V{"\t", " x"});
  // U+3000 and U+00A0 are white space but not the optional prefix: only ' ' is.
  CHECK(pieces("a\xE3\x80\x80" "b") == V{"a", "\xE3\x80\x80", "b"});
  CHECK(pieces("a \xC2\xA0" "b") == V{"a", " ", "\xC2\xA0", "b"});
}

TEST_CASE("the ASCII fast path classifies as the Unicode tables do") {
  for (int c = 0; c < 128; ++c) {
    const std::string s(1, static_cast<char>(c));
    CAPTURE(c);
    CHECK(detail::ClassReader(s).at(0).cls == char_class(static_cast<char32_t>(c)));
  }
}

TEST_CASE("long runs split in linear time and stay whole") {
  const std::string letters(1 << 20, 'a'), blanks(1 << 20, ' ');
  CHECK(pieces(letters).size() == 1);
  CHECK(pieces(blanks).size() == 1);
  CHECK(pieces(blanks + "x") == V{std::string((1 << 20) - 1, ' '), " x"});
}
