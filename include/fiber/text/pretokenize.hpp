#pragma once
// GPT-2 pre-tokenisation: splits text into the pieces BPE encodes separately, as the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does with a backtracking engine (leftmost alternative wins, not the longest). Written as a
// small hand matcher over code points; contractions are case-sensitive, the optional prefix is
// the ASCII space only, \s is White_Space.
#include <cstddef>
#include <string_view>

#include "fiber/text/char_class.hpp"
#include "fiber/text/utf8.hpp"

namespace fiber::text {

namespace detail {

// Length of a contraction ('s 't 're 've 'm 'll 'd) at text[at] == '\'', else 0.
inline std::size_t contraction_length(std::string_view text, std::size_t at) {
  const std::size_t left = text.size() - at;
  if (left < 2) return 0;
  const char a = text[at + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (left < 3) return 0;
  const char b = text[at + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Reads code points of well-formed UTF-8 with their classes.
class ClassReader {
 public:
  explicit ClassReader(std::string_view text)
      : text_(text), table_(char_class_table()) {}

  struct Char {
    CharClass cls;
    std::size_t length;
  };
  // The character at byte `at` (< size).
  Char at(std::size_t at) const {
    const auto c = static_cast<unsigned char>(text_[at]);
    if (c < 0x80) return {ascii_class(c), 1};
    const Utf8Step step = utf8_next(text_, at);
    return {table_(step.code_point), step.length};
  }

 private:
  static CharClass ascii_class(unsigned char c) {
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CharClass::letter;
    if (c >= '0' && c <= '9') return CharClass::number;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::space;
    return CharClass::other;
  }
  std::string_view text_;
  const CharClassTable& table_;
};

}  // namespace detail

// Calls piece(begin, end) with the byte range of each pre-token of `text` (well-formed UTF-8),
// in order; the pieces tile the text.
template <class Piece>
void gpt2_pretokenize(std::string_view text, Piece&& piece) {
  const detail::ClassReader read(text);
  const std::size_t n = text.size();
  std::size_t pos = 0;
  while (pos < n) {
    if (text[pos] == '\'') {
      if (std::size_t len = detail::contraction_length(text, pos)) {
        piece(pos, pos + len);
        pos += len;
        continue;
      }
    }
    auto first = read.at(pos);
    std::size_t run_start = pos;  // where the class run begins (after an optional space)
    CharClass cls = first.cls;
    if (text[pos] == ' ' && pos + 1 < n) {
      auto next = read.at(pos + 1);
      if (next.cls != CharClass::space) {
        cls = next.cls;
        run_start = pos + 1;
        first = next;
      }
    }
    std::size_t end = run_start + first.length;
    if (cls != CharClass::space) {
      // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
      while (end < n) {
        auto c = read.at(end);
        if (c.cls != cls) break;
        end += c.length;
      }
      piece(pos, end);
      pos = end;
      continue;
    }
    // White space: `\s+(?!\S)` keeps a run that reaches the end, or gives back its last
    // character when the run has two or more; otherwise `\s+` takes the single character.
    std::size_t last = pos;  // start of the run's last character
    while (end < n) {
      auto c = read.at(end);
      if (c.cls != CharClass::space) break;
      last = end;
      end += c.length;
    }
    if (end < n && last > pos) end = last;
    piece(pos, end);
    pos = end;
  }
}

}  // namespace fiber::text
