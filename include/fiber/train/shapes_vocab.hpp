#pragma once
// The closed vocabulary of the shapes world and the byte-level BPE tokenizer files built from it.
//
// Layout of vocab.json (RoBERTa's conventions, so text/tokenizer.hpp loads it unchanged):
//   0 "<s>", 1 "<pad>", 2 "</s>", 3 "<unk>"
//   4 + b      the byte-level alphabet symbol of byte b, b = 0..255 (so any text still tokenizes)
//   260 ...    merge products, in merge order
//   last       "<mask>" (RoBERTa puts it last too)
// The merges are learned by plain BPE training on the world's words, each in two forms: "word"
// (first word of a caption, no leading space) and "Ġword" (after a space), until every form is a
// single token. Training is deterministic (most frequent pair, ties broken by the smaller pair of
// strings) and depends only on the word list, so the files are the same for every seed and the
// size is the compile-time constant shapes_world_vocab_size, which a model configuration can use
// as its vocab_size. tests/data_pipeline checks that each word form encodes to one token.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fiber/core/error.hpp"
#include "fiber/text/byte_level.hpp"

namespace fiber::train {

// Every word a shapes-world caption uses. Changing this list changes the vocabulary: update
// shapes_world_vocab_size (the writer checks it).
inline constexpr std::array<std::string_view, 20> shapes_world_words = {
    "a",      "small",  "large",  "red",    "green",    "blue",  "yellow", "purple", "orange", "circle",
    "square", "triangle", "cross", "left",  "right",    "of",    "above",  "below",  "and",    "it"};

// 4 specials + 256 bytes + 81 merge products + "<mask>". Small enough for a tiny model's embedding table.
inline constexpr std::int64_t shapes_world_vocab_size = 342;

struct ShapesVocab {
  std::vector<std::string> tokens;                          // by id, in the byte-level alphabet
  std::vector<std::pair<std::string, std::string>> merges;  // by rank

  std::string vocab_json() const {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (std::size_t id = 0; id < tokens.size(); ++id) j[tokens[id]] = id;
    return j.dump() + "\n";
  }
  std::string merges_txt() const {
    std::string out = "#version: 0.2\n";
    for (const auto& [l, r] : merges) out += l + " " + r + "\n";
    return out;
  }
};

namespace detail {
// The alphabet spelling of each byte of `text`, one symbol per byte.
inline std::vector<std::string> byte_symbols(std::string_view text) {
  std::vector<std::string> symbols;
  for (char c : text) symbols.push_back(text::ByteLevelAlphabet().encode(std::string_view(&c, 1)));
  return symbols;
}
}  // namespace detail

// Builds the vocabulary (see the top of this file). Deterministic; a few hundred microseconds.
inline ShapesVocab build_shapes_vocab() {
  ShapesVocab v;
  v.tokens = {"<s>", "<pad>", "</s>", "<unk>"};
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    v.tokens.push_back(text::ByteLevelAlphabet().encode(std::string_view(&c, 1)));
  }
  // The corpus: both forms of every word, each once.
  std::vector<std::vector<std::string>> words;
  for (std::string_view w : shapes_world_words) {
    words.push_back(detail::byte_symbols(w));
    words.push_back(detail::byte_symbols(" " + std::string(w)));
  }
  std::map<std::string, bool> known;
  for (const auto& t : v.tokens) known[t] = true;
  for (;;) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const auto& w : words)
      for (std::size_t i = 0; i + 1 < w.size(); ++i) ++counts[{w[i], w[i + 1]}];
    if (counts.empty()) break;  // every form is one token
    // Most frequent pair; std::map iterates in ascending order, so ties go to the smaller pair.
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it)
      if (it->second > best->second) best = it;
    const auto [left, right] = best->first;
    v.merges.emplace_back(left, right);
    const std::string merged = left + right;
    if (!known[merged]) {
      known[merged] = true;
      v.tokens.push_back(merged);
    }
    for (auto& w : words) {  // apply left to right, as training does
      std::vector<std::string> out;
      for (std::size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == left && w[i + 1] == right) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(w[i]);
        }
      }
      w = std::move(out);
    }
  }
  v.tokens.push_back("<mask>");
  FIBER_CHECK(std::int64_t(v.tokens.size()) == shapes_world_vocab_size, "shapes world vocabulary: built ",
              v.tokens.size(), " tokens but shapes_world_vocab_size is ", shapes_world_vocab_size,
              " (the word list changed: update the constant)");
  return v;
}

}  // namespace fiber::train
