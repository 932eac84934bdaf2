#pragma once
// The character classes of the GPT-2 pattern: \p{L} (letter), \p{N} (number), \s (White_Space)
// and everything else, for any code point, from the generated Unicode 16.0 runs
// (unicode_tables.hpp). Lookup is two loads: a block index per 256 code points, then the block.
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "fiber/text/unicode_tables.hpp"

namespace fiber::text {

enum class CharClass : std::uint8_t { other = 0, letter = 1, number = 2, space = 3 };

namespace detail {

class CharClassTable {
 public:
  CharClassTable() {
    constexpr std::uint32_t blocks = 0x110000 / 256;
    block_of_.resize(blocks);
    std::unordered_map<std::string, std::uint16_t> seen;  // distinct blocks
    std::string block(256, 0);
    std::size_t run = 0;
    constexpr std::size_t runs = std::size(class_runs);
    for (std::uint32_t b = 0; b < blocks; ++b) {
      for (std::uint32_t k = 0; k < 256; ++k) {
        const std::uint32_t cp = b * 256 + k;
        while (run + 1 < runs && class_runs[run + 1].first <= cp) ++run;
        block[k] = static_cast<char>(class_runs[run].cls);
      }
      auto [it, added] = seen.try_emplace(block, static_cast<std::uint16_t>(seen.size()));
      if (added) classes_.insert(classes_.end(), block.begin(), block.end());
      block_of_[b] = it->second;
    }
  }
  CharClass operator()(char32_t cp) const {
    if (cp >= 0x110000) return CharClass::other;
    return static_cast<CharClass>(classes_[std::size_t(block_of_[cp >> 8]) * 256 + (cp & 255)]);
  }

 private:
  std::vector<std::uint16_t> block_of_;
  std::vector<std::uint8_t> classes_;
};

inline const CharClassTable& char_class_table() {
  static const CharClassTable table;
  return table;
}

}  // namespace detail

inline CharClass char_class(char32_t cp) { return detail::char_class_table()(cp); }

}  // namespace fiber::text
