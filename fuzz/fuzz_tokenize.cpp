// Fuzzes encoding arbitrary bytes with a small byte-level vocabulary. Checks, besides "no crash":
// shapes agree, offsets lie inside the text, char_to_token points at a token covering the
// character, decode gives back the text (ill-formed UTF-8 replaced), the strict mode throws
// exactly on ill-formed input, and truncation/padding give exactly max_length tokens.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "fiber/text/tokenizer.hpp"

namespace {
using namespace fiber::text;

// Specials, the 256 alphabet characters, a few merges, <mask> last.
std::pair<std::string, std::string> small_vocab() {
  std::vector<std::string> tokens = {"<s>", "<pad>", "</s>", "<unk>"};
  for (int b = 0; b < 256; ++b) {
    std::string c;
    utf8_append(c, byte_level.to_char(static_cast<std::uint8_t>(b)));
    tokens.push_back(c);
  }
  const char* merges[][2] = {{"\xC4\xA0", "t"}, {"h", "e"}, {"\xC4\xA0t", "he"}, {"i", "n"}, {"\xC4\xA0", "a"},
                             {"e", "r"}, {"\xC4\xA0", "\xC4\xA0"}, {"\xC4\xA0\xC4\xA0", "\xC4\xA0\xC4\xA0"},
                             {"\xC3\x83", "\xC2\xA9"}, {"'", "s"}, {"a", "a"}, {"aa", "a"}, {"1", "2"}, {"\xC4\x8A", "\xC4\x8A"}};
  std::string merges_txt = "#version: 0.2\n";
  for (auto& m : merges) {
    tokens.push_back(std::string(m[0]) + m[1]);
    merges_txt += std::string(m[0]) + " " + m[1] + "\n";
  }
  tokens.push_back("<mask>");
  nlohmann::json vocab = nlohmann::json::object();
  for (std::size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  return {vocab.dump(), merges_txt};
}

const Tokenizer& tokenizer(InvalidUtf8 policy) {
  static const auto files = small_vocab();
  static const Tokenizer replace = Tokenizer::from_strings(files.first, files.second);
  static const Tokenizer strict = [] {
    TokenizerOptions o;
    o.invalid_utf8 = InvalidUtf8::error;
    return Tokenizer::from_strings(files.first, files.second, o);
  }();
  return policy == InvalidUtf8::replace ? replace : strict;
}

void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Tokenizer& tok = tokenizer(InvalidUtf8::replace);
  const Encoding e = tok.encode(text);
  const std::size_t n = e.size();
  require(n >= 2 && e.offsets.size() == n && e.tokens.size() == n && e.attention_mask.size() == n);
  const std::string replaced = utf8_replace_invalid(text);
  require(e.num_chars == utf8_length(replaced));
  for (const CharSpan& s : e.offsets) require(s.begin <= s.end && s.end <= e.num_chars);
  for (std::size_t c = 0; c < std::min<std::size_t>(e.num_chars, 64); ++c) {  // linear each: keep it short
    if (auto t = e.char_to_token(c)) require(e.offsets[*t].begin <= c && c < e.offsets[*t].end);
  }
  require(tok.decode(std::vector<std::int32_t>(e.ids.begin() + 1, e.ids.end() - 1)) == replaced);

  const bool well_formed = utf8_invalid_offset(text) == std::string_view::npos;
  try {
    (void)tokenizer(InvalidUtf8::error).encode(text);
    require(well_formed);
  } catch (const fiber::Error&) {
    require(!well_formed);
  }

  EncodeOptions opt;
  opt.max_length = 2 + (size ? data[0] % 16 : 0);
  opt.truncate = opt.pad_to_max = true;
  const Encoding t = tok.encode(text, opt);
  require(t.size() == opt.max_length && t.ids.back() != tok.bos_id());
  return 0;
}
