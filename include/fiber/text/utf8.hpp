#pragma once
// UTF-8 reading for the tokenizer. Text from outside may be ill-formed; the tokenizer either
// replaces each maximal ill-formed subsequence with U+FFFD (the Unicode-recommended practice,
// which is what Python's bytes.decode("utf-8", errors="replace") and Rust's
// String::from_utf8_lossy do), or throws a fiber::Error naming the byte offset.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fiber/core/error.hpp"

namespace fiber::text {

enum class InvalidUtf8 {
  replace,  // each maximal ill-formed subsequence becomes U+FFFD
  error,    // fiber::Error "... invalid UTF-8 at byte N"
};

inline constexpr char32_t replacement_character = 0xFFFD;

struct Utf8Step {
  char32_t code_point;  // replacement_character when !valid
  std::uint32_t length; // bytes consumed: the sequence, or its maximal ill-formed subpart (>= 1)
  bool valid;
};

// Reads one sequence at p (p < end). Well-formed sequences follow Unicode Table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF.
inline Utf8Step utf8_next(const unsigned char* p, const unsigned char* end) {
  const unsigned lead = p[0];
  if (lead < 0x80) return {lead, 1, true};
  std::uint32_t need;           // continuation bytes
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
  char32_t cp;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1, cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2, cp = lead & 0x0F;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3, cp = lead & 0x07;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {replacement_character, 1, false};
  }
  std::uint32_t n = 1;
  for (std::uint32_t k = 0; k < need; ++k, ++n) {
    if (p + n >= end) return {replacement_character, n, false};
    const unsigned b = p[n];
    if (b < lo || b > hi) return {replacement_character, n, false};
    lo = 0x80, hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, n, true};
}

inline Utf8Step utf8_next(std::string_view s, std::size_t at) {
  auto* base = reinterpret_cast<const unsigned char*>(s.data());
  return utf8_next(base + at, base + s.size());
}

// Byte offset of the first ill-formed sequence, or npos when `s` is well-formed.
inline std::size_t utf8_invalid_offset(std::string_view s) {
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t word;
      __builtin_memcpy(&word, p + i, 8);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = utf8_next(p + i, p + n);
    if (!step.valid) return i;
    i += step.length;
  }
  return std::string_view::npos;
}

inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// `s` with every maximal ill-formed subsequence replaced by U+FFFD.
inline std::string utf8_replace_invalid(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  std::size_t i = 0;
  while (i < s.size()) {
    const Utf8Step step = utf8_next(s, i);
    if (step.valid)
      out.append(s.substr(i, step.length));
    else
      utf8_append(out, replacement_character);
    i += step.length;
  }
  return out;
}

// Code points in well-formed UTF-8 (counts lead bytes).
inline std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Checks `text` under `policy`: returns true when it is well-formed, false when it must be
// replaced (policy replace), throws fiber::Error naming `what` and the byte offset otherwise.
inline bool utf8_check(std::string_view text, InvalidUtf8 policy, std::string_view what) {
  const std::size_t bad = utf8_invalid_offset(text);
  if (bad == std::string_view::npos) return true;
  FIBER_CHECK(policy == InvalidUtf8::replace, what, ": invalid UTF-8 at byte ", bad, " (byte 0x",
              "0123456789abcdef"[static_cast<unsigned char>(text[bad]) >> 4],
              "0123456789abcdef"[static_cast<unsigned char>(text[bad]) & 15], ")");
  return false;
}

}  // namespace fiber::text
