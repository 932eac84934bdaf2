#pragma once
// Prompts for grounding: which phrases the model looks for and which text tokens carry each one.
//   detection_prompt(categories)    "cat. dog. traffic light" from category names, as GLIP's
//                                    create_queries_and_maps (clean_name, ". " between names)
//   caption_prompt(text, phrases)   phrases found in a caption (each occurrence one span)
//   phrase_tokens(encoding, prompt) token columns of each phrase, as the official
//                                    create_positive_map maps character spans (char_to_token with
//                                    its fallbacks)
//   chunk_detection_prompt(...)     category lists too long for the model's 256 tokens split into
//                                    prompts that fit (the official code truncates instead)
// Spans count code points (Python's str indices), as the official code and text::Encoding do.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/detection/postprocess.hpp"
#include "fiber/text/tokenizer.hpp"
#include "fiber/text/utf8.hpp"

namespace fiber::detection {

// The language backbone reads at most this many tokens, <s> and </s> included (MAX_QUERY_LEN).
inline constexpr std::size_t max_query_tokens = 256;

struct PromptPhrase {
  std::string name;
  std::vector<text::CharSpan> spans;  // where it occurs in the prompt's text, in code points
};

struct Prompt {
  std::string text;
  std::vector<PromptPhrase> phrases;  // phrase p is detection label p + 1
};

namespace detail {
inline void check_utf8(std::string_view s, std::string_view what) {
  const std::size_t bad = text::utf8_invalid_offset(s);
  FIBER_CHECK(bad == std::string_view::npos, what, " is not valid UTF-8 (byte ", bad, "): ", excerpt(s, 100));
}

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }
}  // namespace detail

// A category name as GLIP's clean_name leaves it: a parenthesised part removed (greedy, from the
// first "(" to the last ")" of the line, Python's re.sub(r"\(.*\)", "")), underscores made
// spaces, then each pair of spaces made one (left to right, non-overlapping).
inline std::string clean_category_name(std::string_view name) {
  std::string cut;
  for (std::size_t i = 0; i < name.size();) {
    if (name[i] == '(') {
      const std::size_t line_end = std::min(name.find('\n', i), name.size());
      const std::size_t close = name.substr(i, line_end - i).rfind(')');
      if (close != std::string_view::npos) {
        i += close + 1;
        continue;
      }
    }
    cut += name[i++];
  }
  std::replace(cut.begin(), cut.end(), '_', ' ');
  std::string out;
  for (std::size_t i = 0; i < cut.size();) {
    if (cut[i] == ' ' && i + 1 < cut.size() && cut[i + 1] == ' ') {
      out += ' ';
      i += 2;
    } else {
      out += cut[i++];
    }
  }
  return out;
}

// The detection prompt of a category list: cleaned names joined by `separator`, each name one
// phrase with one span.
inline Prompt detection_prompt(std::span<const std::string> categories, std::string_view separator = ". ") {
  FIBER_CHECK(!categories.empty(), "detection_prompt: no categories");
  Prompt p;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < categories.size(); ++i) {
    detail::check_utf8(categories[i], "detection_prompt: category " + std::to_string(i));
    std::string name = clean_category_name(categories[i]);
    FIBER_CHECK(!name.empty(), "detection_prompt: category ", i, " (", excerpt(categories[i], 100),
                ") is empty once cleaned");
    if (i > 0) {
      p.text += separator;
      chars += text::utf8_length(separator);
    }
    const std::size_t n = text::utf8_length(name);
    p.text += name;
    p.phrases.push_back({std::move(name), {{chars, chars + n}}});
    chars += n;
  }
  return p;
}

// Categories of a detection prompt typed as text: "cat. dog. traffic light." splits at '.' into
// "cat", "dog", "traffic light" (spaces around each trimmed, empty pieces dropped).
inline std::vector<std::string> split_detection_prompt(std::string_view text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t dot = std::min(text.find('.', at), text.size());
    std::string_view piece = text.substr(at, dot - at);
    while (!piece.empty() && (piece.front() == ' ' || piece.front() == '\t' || piece.front() == '\n')) piece.remove_prefix(1);
    while (!piece.empty() && (piece.back() == ' ' || piece.back() == '\t' || piece.back() == '\n')) piece.remove_suffix(1);
    if (!piece.empty()) out.emplace_back(piece);
    at = dot + 1;
  }
  FIBER_CHECK(!out.empty(), "split_detection_prompt: no category in the text ", excerpt(text, 100));
  return out;
}

// A caption with the phrases to ground in it: each phrase gets every occurrence of it in the text
// (ASCII letters compared without case, as the official demo lowercases both; non-overlapping,
// left to right). A phrase that does not occur is an error.
inline Prompt caption_prompt(std::string_view caption, std::span<const std::string> phrases) {
  detail::check_utf8(caption, "caption_prompt: the caption");
  FIBER_CHECK(!phrases.empty(), "caption_prompt: no phrases");
  std::string lower(caption);
  std::transform(lower.begin(), lower.end(), lower.begin(), detail::ascii_lower);
  Prompt p{std::string(caption), {}};
  for (std::size_t i = 0; i < phrases.size(); ++i) {
    detail::check_utf8(phrases[i], "caption_prompt: phrase " + std::to_string(i));
    FIBER_CHECK(!phrases[i].empty(), "caption_prompt: phrase ", i, " is empty");
    std::string needle(phrases[i]);
    std::transform(needle.begin(), needle.end(), needle.begin(), detail::ascii_lower);
    PromptPhrase phrase{phrases[i], {}};
    // Code points are counted from the previous match on, so many occurrences cost one pass.
    const std::size_t length = text::utf8_length(needle);
    std::size_t counted_bytes = 0, counted_chars = 0;
    for (std::size_t at = lower.find(needle); at != std::string::npos; at = lower.find(needle, at + needle.size())) {
      counted_chars += text::utf8_length(std::string_view(caption).substr(counted_bytes, at - counted_bytes));
      counted_bytes = at;
      phrase.spans.push_back({counted_chars, counted_chars + length});
    }
    FIBER_CHECK(!phrase.spans.empty(), "caption_prompt: phrase ", i, " (", excerpt(phrases[i], 100),
                ") does not occur in the caption ", excerpt(caption, 100));
    p.phrases.push_back(std::move(phrase));
  }
  return p;
}

// The token columns of each phrase in `enc` (the prompt's text encoded without truncation): a
// span [b, e) covers the tokens from char_to_token(b) to char_to_token(e − 1); where b has no
// token, b + 1 then b + 2 are tried, where e − 1 has none, e − 2 then e − 3 (official
// create_positive_map); a span still without both ends is skipped, as the official does. A phrase
// left without tokens, or reaching past `max_tokens`, is an error (the official leaves it
// unscored, or cuts it silently).
inline PhraseTokens phrase_tokens(const text::Encoding& enc, const Prompt& prompt,
                                  std::size_t max_tokens = max_query_tokens) {
  auto at = [&](std::int64_t c) -> std::optional<std::size_t> {
    return c < 0 ? std::nullopt : enc.char_to_token(std::size_t(c));
  };
  PhraseTokens out;
  for (std::size_t p = 0; p < prompt.phrases.size(); ++p) {
    const PromptPhrase& phrase = prompt.phrases[p];
    std::vector<std::int64_t> tokens;
    for (const text::CharSpan& s : phrase.spans) {
      const auto b = std::int64_t(s.begin), e = std::int64_t(s.end);
      std::optional<std::size_t> first = at(b), last = at(e - 1);
      if (!first) first = at(b + 1);
      if (!first) first = at(b + 2);
      if (!last) last = at(e - 2);
      if (!last) last = at(e - 3);
      if (!first || !last) continue;
      for (std::size_t t = *first; t <= *last; ++t) tokens.push_back(std::int64_t(t));
    }
    std::sort(tokens.begin(), tokens.end());
    tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
    FIBER_CHECK(!tokens.empty(), "phrase_tokens: phrase ", p, " (", excerpt(phrase.name, 100),
                ") covers no token of the prompt");
    FIBER_CHECK(std::size_t(tokens.back()) < max_tokens, "phrase_tokens: phrase ", p, " (", excerpt(phrase.name, 100),
                ") reaches token ", tokens.back(), ", past the ", max_tokens,
                " the model reads; shorten the prompt or split it (chunk_detection_prompt)");
    out.push_back(std::move(tokens));
  }
  return out;
}

// One prompt of a split category list; phrase i of `prompt` is category first_category + i.
struct PromptChunk {
  Prompt prompt;
  std::size_t first_category = 0;
};

// Splits a category list into detection prompts of at most `max_tokens` tokens each (<s> and </s>
// included) and, when max_phrases > 0, at most that many categories each, filling each prompt
// greedily in order. A category too long for a prompt of its own is an error.
inline std::vector<PromptChunk> chunk_detection_prompt(std::span<const std::string> categories,
                                                       const text::Tokenizer& tokenizer,
                                                       std::size_t max_tokens = max_query_tokens,
                                                       std::size_t max_phrases = 0, std::string_view separator = ". ") {
  FIBER_CHECK(!categories.empty(), "chunk_detection_prompt: no categories");
  std::vector<PromptChunk> out;
  auto fits = [&](std::span<const std::string> part) {
    return tokenizer.encode(detection_prompt(part, separator).text).size() <= max_tokens;
  };
  std::size_t begin = 0;
  while (begin < categories.size()) {
    FIBER_CHECK(fits(categories.subspan(begin, 1)), "chunk_detection_prompt: category ", begin, " (",
                excerpt(categories[begin], 100), ") alone is more than ", max_tokens, " tokens");
    std::size_t end = begin + 1;
    while (end < categories.size() && (max_phrases == 0 || end - begin < max_phrases) &&
           fits(categories.subspan(begin, end + 1 - begin)))
      ++end;
    out.push_back({detection_prompt(categories.subspan(begin, end - begin), separator), begin});
    begin = end;
  }
  return out;
}

}  // namespace fiber::detection
