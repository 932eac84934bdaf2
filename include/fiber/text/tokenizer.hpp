#pragma once
// The RoBERTa tokenizer (byte-level BPE, as GPT-2): text -> ids framed as <s> ... </s>, with
// truncation, padding, an attention mask and character offsets, matching transformers'
// RobertaTokenizerFast (add_prefix_space=False, trim_offsets=True) id for id and offset for
// offset.
//
// Pipeline: UTF-8 check (ill-formed input replaced or rejected, see InvalidUtf8); special-token
// strings in the text ("<mask>", ...) become their ids, as HF's added vocabulary does; the rest
// is split by the GPT-2 pattern and each piece BPE-encoded; offsets are converted from bytes to
// characters (code points of the text after replacement; a token that covers part of a
// character covers the whole character) and trimmed: a token's leading and trailing spaces
// ('Ġ') are removed from its span, so a lone space token has an empty span.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/text/bpe.hpp"
#include "fiber/text/pretokenize.hpp"
#include "fiber/text/utf8.hpp"

namespace fiber::text {

struct SpecialTokens {
  std::string bos = "<s>";    // starts every sequence (RoBERTa's cls token)
  std::string eos = "</s>";   // ends every sequence (RoBERTa's sep token)
  std::string pad = "<pad>";
  std::string unk = "<unk>";
  std::string mask = "<mask>";
};

struct TokenizerOptions {
  SpecialTokens special;
  InvalidUtf8 invalid_utf8 = InvalidUtf8::replace;
  // Special-token strings inside the text become their ids (HF behaviour); off: they are text.
  bool match_special_tokens_in_text = true;
};

struct EncodeOptions {
  std::size_t max_length = 0;      // 0: no limit; with truncate/pad_to_max it counts <s> and </s>
  bool truncate = false;           // keep the first max_length tokens (specials included)
  bool pad_to_max = false;         // append <pad> (attention 0, offsets (0,0)) up to max_length
  bool add_special_tokens = true;  // frame as <s> ... </s>
};

// A token's characters in the text: [begin, end) in code points; (0, 0) for added tokens.
struct CharSpan {
  std::size_t begin = 0, end = 0;
  bool operator==(const CharSpan&) const = default;
};

struct Encoding {
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> attention_mask;   // 1 for tokens, 0 for padding
  std::vector<std::uint8_t> special_tokens_mask;  // 1 for <s>, </s> and <pad> added by framing
  std::vector<CharSpan> offsets;
  // Token strings: views into the tokenizer's vocabulary, valid while the Tokenizer lives.
  std::vector<std::string_view> tokens;
  std::size_t num_chars = 0;  // code points of the text (after replacement of invalid UTF-8)

  std::size_t size() const { return ids.size(); }

  // The first token whose span contains character `char_index`, as HF's char_to_token: none for
  // characters no token covers (spaces trimmed away, text cut by truncation, out of range).
  std::optional<std::size_t> char_to_token(std::size_t char_index) const {
    for (std::size_t t = 0; t < offsets.size(); ++t)
      if (offsets[t].begin <= char_index && char_index < offsets[t].end) return t;
    return std::nullopt;
  }
};

class Tokenizer {
 public:
  Tokenizer(BpeModel model, TokenizerOptions options = {}) : model_(std::move(model)), options_(std::move(options)) {
    const SpecialTokens& s = options_.special;
    const std::pair<const std::string&, std::string_view> roles[] = {
        {s.bos, "bos"}, {s.eos, "eos"}, {s.pad, "pad"}, {s.unk, "unk"}, {s.mask, "mask"}};
    for (const auto& [token, role] : roles) specials_.push_back({token, special_id(token, role)});
    // Per token: how many leading / trailing characters offset trimming removes ('Ġ' or
    // White_Space, as HF's byte-level post-processor).
    const auto& tokens = model_.tokens();
    trim_.resize(tokens.size());
    for (std::size_t id = 0; id < tokens.size(); ++id) trim_[id] = trim_counts(tokens[id]);
  }

  static Tokenizer from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt,
                              TokenizerOptions options = {}) {
    return Tokenizer(BpeModel::from_files(vocab_json, merges_txt), std::move(options));
  }
  static Tokenizer from_strings(std::string_view vocab_json, std::string_view merges_txt,
                                TokenizerOptions options = {}) {
    return Tokenizer(BpeModel::from_strings(vocab_json, merges_txt), std::move(options));
  }

  const BpeModel& model() const { return model_; }
  const TokenizerOptions& options() const { return options_; }
  std::size_t vocab_size() const { return model_.vocab_size(); }
  std::int32_t bos_id() const { return specials_[kBos].id; }
  std::int32_t eos_id() const { return specials_[kEos].id; }
  std::int32_t pad_id() const { return specials_[kPad].id; }
  std::int32_t unk_id() const { return specials_[kUnk].id; }
  std::int32_t mask_id() const { return specials_[kMask].id; }

  Encoding encode(std::string_view text, const EncodeOptions& opt = {}) const {
    FIBER_CHECK(!(opt.truncate || opt.pad_to_max) || opt.max_length > 0,
                "Tokenizer::encode: truncate/pad_to_max need max_length > 0");
    const std::size_t framing = opt.add_special_tokens ? 2 : 0;
    FIBER_CHECK(!opt.truncate || opt.max_length >= framing, "Tokenizer::encode: max_length ",
                opt.max_length, " leaves no room for <s> and </s>");
    std::string replaced;
    if (!utf8_check(text, options_.invalid_utf8, "Tokenizer::encode")) {
      replaced = utf8_replace_invalid(text);
      text = replaced;
    }
    thread_local std::vector<Piece> pieces;  // content tokens with byte offsets in `text`
    pieces.clear();
    split_and_encode(text, pieces);
    if (opt.truncate && pieces.size() > opt.max_length - framing) pieces.resize(opt.max_length - framing);

    Encoding e;
    const std::size_t n = pieces.size() + framing;
    const std::size_t total = opt.pad_to_max ? std::max(n, opt.max_length) : n;
    e.ids.reserve(total);
    e.offsets.reserve(total);
    e.tokens.reserve(total);
    e.attention_mask.assign(n, 1);
    e.attention_mask.resize(total, 0);
    e.special_tokens_mask.reserve(total);
    auto add = [&](std::int32_t id, CharSpan span, bool special) {
      e.ids.push_back(id);
      e.offsets.push_back(span);
      e.tokens.push_back(model_.tokens()[id]);
      e.special_tokens_mask.push_back(special);
    };
    if (opt.add_special_tokens) add(bos_id(), {}, true);
    // Byte -> character offsets: starts and ends are each non-decreasing, so two cursors walk
    // the text once. A start inside a character moves to that character; an end inside one
    // moves past it.
    ByteToChar starts(text), ends(text);
    for (const Piece& p : pieces) {
      CharSpan span{starts.char_containing(p.begin), ends.chars_before_end(p.end)};
      const Trim t = trim_[p.id];
      if (t.leading) span.begin = std::min(span.begin + t.leading, span.end);
      if (t.trailing && span.end >= t.trailing) span.end = std::max(span.end - t.trailing, span.begin);
      add(p.id, span, false);
    }
    if (opt.add_special_tokens) add(eos_id(), {}, true);
    while (e.ids.size() < total) add(pad_id(), {}, true);
    e.num_chars = utf8_length(text);
    return e;
  }

  // Encodes every text on the fiber thread pool; results in input order.
  std::vector<Encoding> encode_batch(std::span<const std::string_view> texts, const EncodeOptions& opt = {}) const {
    std::vector<Encoding> out(texts.size());
    fiber::parallel_for(0, static_cast<std::int64_t>(texts.size()), 16, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) out[i] = encode(texts[i], opt);
    });
    return out;
  }
  std::vector<Encoding> encode_batch(std::span<const std::string> texts, const EncodeOptions& opt = {}) const {
    std::vector<std::string_view> views(texts.begin(), texts.end());
    return encode_batch(std::span<const std::string_view>(views), opt);
  }

  // Text of `ids`: token strings mapped back to bytes through the byte-level alphabet (a token
  // with characters outside it contributes its own UTF-8), then ill-formed UTF-8 replaced by
  // U+FFFD, as HF's byte-level decoder. Ids outside the vocabulary throw.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = false) const {
    std::string bytes;
    for (std::int32_t id : ids) {
      const std::string& token = model_.id_to_token(id);
      if (skip_special_tokens && is_special(id)) continue;
      const std::size_t mark = bytes.size();
      if (!byte_level.decode(token, bytes)) {
        bytes.resize(mark);
        bytes += token;
      }
    }
    return utf8_replace_invalid(bytes);
  }

  bool is_special(std::int32_t id) const {
    for (const auto& s : specials_)
      if (s.id == id) return true;
    return false;
  }

 private:
  struct Piece {
    std::int32_t id;
    std::size_t begin, end;  // bytes in the text
  };
  struct Trim {
    std::uint8_t leading = 0, trailing = 0;
  };
  struct Special {
    std::string text;
    std::int32_t id;
  };
  enum SpecialRole { kBos, kEos, kPad, kUnk, kMask };  // positions in specials_

  // Byte offset -> character index for non-decreasing queries on well-formed UTF-8.
  class ByteToChar {
   public:
    explicit ByteToChar(std::string_view text) : text_(text) {}
    // Index of the character that contains byte `b`.
    std::size_t char_containing(std::size_t b) {
      advance(b + 1);
      return chars_ - 1;
    }
    // Number of characters that start before byte `b`: the end of a span ending at `b`.
    std::size_t chars_before_end(std::size_t b) {
      advance(b);
      return chars_;
    }

   private:
    void advance(std::size_t to) {
      for (; byte_ < to; ++byte_) chars_ += (static_cast<unsigned char>(text_[byte_]) & 0xC0) != 0x80;
    }
    std::string_view text_;
    std::size_t byte_ = 0, chars_ = 0;
  };

  std::int32_t special_id(const std::string& token, std::string_view role) const {
    FIBER_CHECK(!token.empty(), "Tokenizer: the ", role, " token must not be empty");
    auto id = model_.token_to_id(token);
    FIBER_CHECK(id, "Tokenizer: the ", role, " token '", excerpt(token), "' is not in the vocabulary");
    return *id;
  }

  static Trim trim_counts(std::string_view token) {
    std::vector<bool> trimmable;
    for (std::size_t i = 0; i < token.size();) {
      const Utf8Step s = utf8_next(token, i);
      trimmable.push_back(s.valid && (s.code_point == 0x120 || char_class(s.code_point) == CharClass::space));
      i += s.length;
    }
    Trim t;
    std::size_t lead = 0, trail = 0;
    while (lead < trimmable.size() && trimmable[lead]) ++lead;
    while (trail < trimmable.size() && trimmable[trimmable.size() - 1 - trail]) ++trail;
    t.leading = static_cast<std::uint8_t>(std::min<std::size_t>(lead, 255));
    t.trailing = static_cast<std::uint8_t>(std::min<std::size_t>(trail, 255));
    return t;
  }

  // Special tokens in the text first (leftmost, then longest), then GPT-2 pieces between them.
  // Each special's next occurrence is remembered, so the text is scanned once per special.
  void split_and_encode(std::string_view text, std::vector<Piece>& out) const {
    constexpr std::size_t none = std::string_view::npos;
    bool searching = options_.match_special_tokens_in_text;
    std::vector<std::size_t> next(specials_.size(), none);
    if (searching)
      for (std::size_t k = 0; k < specials_.size(); ++k) next[k] = text.find(specials_[k].text);
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t best = none, best_len = 0;
      std::int32_t best_id = -1;
      if (searching) {
        for (std::size_t k = 0; k < specials_.size(); ++k) {
          const Special& s = specials_[k];
          if (next[k] != none && next[k] < pos) next[k] = text.find(s.text, pos);
          const std::size_t at = next[k];
          if (at == none) continue;
          if (at < best || (at == best && s.text.size() > best_len)) best = at, best_len = s.text.size(), best_id = s.id;
        }
        searching = best != none;
      }
      if (best_id < 0) {
        encode_plain(text, pos, text.size(), out);
        break;
      }
      encode_plain(text, pos, best, out);
      out.push_back({best_id, best, best + best_len});
      pos = best + best_len;
    }
  }

  void encode_plain(std::string_view text, std::size_t begin, std::size_t end, std::vector<Piece>& out) const {
    if (begin >= end) return;
    thread_local std::vector<BpePiece> word;
    gpt2_pretokenize(text.substr(begin, end - begin), [&](std::size_t b, std::size_t e) {
      word.clear();
      model_.encode_word(text.substr(begin + b, e - b), word);
      for (const BpePiece& p : word) out.push_back({p.id, begin + b + p.begin, begin + b + p.end});
    });
  }

  BpeModel model_;
  TokenizerOptions options_;
  std::vector<Special> specials_;  // in SpecialRole order
  std::vector<Trim> trim_;
};

}  // namespace fiber::text
