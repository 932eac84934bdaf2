// Fuzzes the vocab.json / merges.txt readers and the BPE built from them. Input: the vocab.json
// text, a NUL byte, the merges.txt text (no NUL: all of it is vocab.json, merges is a bare
// header). Malformed files must give fiber::Error; anything else (crash, UB, other exception)
// is a bug. A model that loads must encode text without failing.
#include <cstdint>
#include <cstring>
#include <string_view>

#include "fiber/text/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view vocab = input.substr(0, nul);
  const std::string_view merges = nul == std::string_view::npos ? "#version: 0.2\n" : input.substr(nul + 1);
  try {
    const auto model = fiber::text::BpeModel::from_strings(vocab, merges);
    std::vector<fiber::text::BpePiece> pieces;
    for (std::string_view word : {"hello", " world", "abcabcabc", "\xC3\xA9t\xC3\xA9", "  "}) {
      pieces.clear();
      model.encode_word(word, pieces);
      std::uint32_t at = 0;
      for (const auto& p : pieces) {  // pieces are in order, disjoint, inside the word
        if (p.begin < at || p.end <= p.begin || p.end > word.size()) __builtin_trap();
        at = p.end;
        (void)model.id_to_token(p.id);
      }
    }
    const auto tok = fiber::text::Tokenizer(model);  // throws when a special token is missing
    (void)tok.encode("hello <mask> world");
  } catch (const fiber::Error&) {
  }
  return 0;
}
