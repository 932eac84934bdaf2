#pragma once
// GPT-2's byte-to-unicode map: every byte becomes one printable code point, so a byte string
// becomes a text the vocabulary can spell. Printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC,
// U+00AE..U+00FF) map to themselves; the other 68 bytes, in increasing order, map to U+0100,
// U+0101, ... (so the space 0x20 becomes U+0120 'Ġ' and '\n' becomes U+010A 'Ċ').
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "fiber/text/utf8.hpp"

namespace fiber::text {

class ByteLevelAlphabet {
 public:
  // Code points above this are never in the alphabet.
  static constexpr char32_t max_code_point = 0x143;

  constexpr ByteLevelAlphabet() {
    for (auto& b : to_byte_) b = -1;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_char_[b] = printable ? char32_t(b) : char32_t(256 + extra++);
      to_byte_[to_char_[b]] = static_cast<std::int16_t>(b);
    }
  }

  constexpr char32_t to_char(std::uint8_t byte) const { return to_char_[byte]; }
  // The byte a code point stands for, or -1 when it is not in the alphabet.
  constexpr int to_byte(char32_t c) const { return c <= max_code_point ? to_byte_[c] : -1; }

  // The alphabet spelling of raw bytes (UTF-8).
  std::string encode(std::string_view bytes) const {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) utf8_append(out, to_char_[b]);
    return out;
  }

  // The bytes an alphabet spelling stands for; false (out unspecified) when some character of
  // `text` is not in the alphabet or `text` is not UTF-8.
  bool decode(std::string_view text, std::string& out) const {
    std::size_t i = 0;
    while (i < text.size()) {
      const Utf8Step step = utf8_next(text, i);
      const int b = step.valid ? to_byte(step.code_point) : -1;
      if (b < 0) return false;
      out += static_cast<char>(b);
      i += step.length;
    }
    return true;
  }

 private:
  std::array<char32_t, 256> to_char_{};
  std::array<std::int16_t, max_code_point + 1> to_byte_{};
};

inline constexpr ByteLevelAlphabet byte_level{};

}  // namespace fiber::text
