#pragma once
// Text from files (tensor names, metadata, tokens, dtype strings) made safe to print: control
// characters would forge extra output lines ("\n") or drive the terminal (ESC sequences, C1
// controls), and a value megabytes long would bury the message it appears in.
//   printable(s):     every byte kept except controls (C0, DEL, C1) and ill-formed UTF-8, which
//                     become \n, \t, \r, \xNN or \u00NN; the whole value.
//   excerpt(s, max):  printable() of at most the first `max` bytes (cut at a character
//                     boundary), then "… (N bytes)" when anything was left out. Use it for every
//                     value an error message echoes.
#include <cstddef>
#include <string>
#include <string_view>

namespace fiber {

namespace printable_detail {

// Length of the well-formed UTF-8 sequence at s[i] (1-4), or 0 when it is ill-formed.
inline std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  char32_t cp = 0;
  if ((c & 0xe0) == 0xc0) n = 2, cp = c & 0x1f;
  else if ((c & 0xf0) == 0xe0) n = 3, cp = c & 0x0f;
  else if ((c & 0xf8) == 0xf0) n = 4, cp = c & 0x07;
  else return 0;
  if (s.size() - i < n) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  static constexpr char32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_length[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

inline void append_hex(std::string& out, const char* prefix, unsigned value, int digits) {
  static const char hex[] = "0123456789abcdef";
  out += prefix;
  for (int d = digits - 1; d >= 0; --d) out += hex[(value >> (4 * d)) & 0xf];
}

}  // namespace printable_detail

// `s` with control characters and ill-formed UTF-8 escaped (see above); a backslash stays as is.
inline std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = printable_detail::utf8_length(s, i);
    if (n == 0) {
      printable_detail::append_hex(out, "\\x", c, 2);
      ++i;
    } else if (n == 1 && (c < 0x20 || c == 0x7f)) {
      if (c == '\n') out += "\\n";
      else if (c == '\t') out += "\\t";
      else if (c == '\r') out += "\\r";
      else printable_detail::append_hex(out, "\\x", c, 2);
      ++i;
    } else if (n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0) {  // C1: U+0080..U+009F
      printable_detail::append_hex(out, "\\u", static_cast<unsigned char>(s[i + 1]), 4);
      i += 2;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

// At most the first `max_bytes` of `s` (whole characters), printable, with "… (N bytes)" after
// a cut.
inline std::string excerpt(std::string_view s, std::size_t max_bytes = 100) {
  if (s.size() <= max_bytes) return printable(s);
  std::size_t cut = 0;
  while (cut < max_bytes) {
    const std::size_t n = printable_detail::utf8_length(s, cut);
    if (cut + (n ? n : 1) > max_bytes) break;
    cut += n ? n : 1;
  }
  return printable(s.substr(0, cut)) + "\xe2\x80\xa6 (" + std::to_string(s.size()) + " bytes)";
}

}  // namespace fiber
