#pragma once
// Readers for the two files of a byte-level BPE tokenizer, in the layout GPT-2 and RoBERTa ship:
//  - vocab.json: one JSON object mapping each token (in the byte-level alphabet) to its id; the
//    ids must be 0..N-1, each once.
//  - merges.txt: one merge per line, "left right" separated by a single space, ranked by line
//    order; lines starting with "#version" are skipped (as HF tokenizers does), nothing else is
//    (an empty line is an error, as in HF).
// Every malformed input gives a fiber::Error naming the file, the line or byte, and what was
// expected.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fiber/core/error.hpp"
#include "fiber/core/printable.hpp"
#include "fiber/core/read_file.hpp"
#include "fiber/text/utf8.hpp"

namespace fiber::text {

// Token lookup by string without building a std::string for the key.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIds = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

struct Vocab {
  std::vector<std::string> tokens;  // by id
  TokenIds ids;
};

struct MergeRule {
  std::string left, right;
  std::size_t line;  // 1-based line in the file, for messages
};

namespace detail {

// SAX handler for vocab.json: accepts exactly one object of token -> non-negative integer.
class VocabSax : public nlohmann::json_sax<nlohmann::json> {
 public:
  VocabSax(std::string_view name, std::vector<std::pair<std::string, std::uint64_t>>& entries)
      : name_(name), entries_(entries) {}

  bool start_object(std::size_t) override {
    if (depth_ != 0) return value_error("an integer id");
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    done_ = true;
    return true;
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (depth_ != 1) return value_error("an object");
    entries_.emplace_back(std::move(key_), v);
    return true;
  }
  bool number_integer(number_integer_t v) override {
    if (depth_ != 1) return value_error("an object");
    fail(name_, ": the id of token '", excerpt(key_), "' is ", v, ", expected a non-negative integer");
  }
  bool number_float(number_float_t v, const string_t&) override {
    return value_error(depth_ == 1 ? "an integer id" : "an object", v);
  }
  bool null() override { return value_error(depth_ == 1 ? "an integer id" : "an object", "null"); }
  bool boolean(bool v) override {
    return value_error(depth_ == 1 ? "an integer id" : "an object", v ? "true" : "false");
  }
  bool string(string_t& v) override {
    return value_error(depth_ == 1 ? "an integer id" : "an object", "\"" + excerpt(v) + "\"");
  }
  bool binary(binary_t&) override { return value_error("an object"); }
  bool start_array(std::size_t) override {
    return value_error(depth_ == 1 ? "an integer id" : "an object", "an array");
  }
  bool end_array() override { return false; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    fail(name_, ": not valid JSON near byte ", position, " (", e.what(), ")");
  }
  bool done() const { return done_; }

 private:
  template <class Found = const char*>
  bool value_error(std::string_view expected, const Found& found = "something else") {
    if (depth_ == 1)
      fail(name_, ": the id of token '", excerpt(key_), "' is ", found, ", expected ", expected);
    fail(name_, ": expected ", expected, " mapping tokens to ids, found ", found);
  }

  std::string_view name_;
  std::vector<std::pair<std::string, std::uint64_t>>& entries_;
  std::string key_;
  int depth_ = 0;
  bool done_ = false;
};

}  // namespace detail

// Parses vocab.json text; `name` (e.g. the path) opens every error message.
inline Vocab parse_vocab_json(std::string_view json, std::string_view name = "vocab.json") {
  std::vector<std::pair<std::string, std::uint64_t>> entries;
  detail::VocabSax sax(name, entries);
  nlohmann::json::sax_parse(json.begin(), json.end(), &sax);
  FIBER_CHECK(sax.done(), name, ": expected a JSON object mapping tokens to ids");
  const std::size_t n = entries.size();
  FIBER_CHECK(n > 0, name, ": the vocabulary is empty");
  FIBER_CHECK(n < std::size_t(std::numeric_limits<std::int32_t>::max()), name, ": ", n,
              " entries is too many");
  Vocab vocab;
  vocab.tokens.resize(n);
  std::vector<bool> used(n, false);
  vocab.ids.reserve(n);
  for (auto& [token, id] : entries) {
    FIBER_CHECK(id < n, name, ": the id of token '", excerpt(token), "' is ", id, ", expected ids 0..",
                n - 1, " (one per entry, no gaps)");
    FIBER_CHECK(!used[id], name, ": duplicate id ", id, " (tokens '", excerpt(vocab.tokens[id]), "' and '",
                excerpt(token), "')");
    auto [it, added] = vocab.ids.emplace(token, static_cast<std::int32_t>(id));
    FIBER_CHECK(added, name, ": duplicate token '", excerpt(token), "' (ids ", it->second, " and ", id, ")");
    used[id] = true;
    vocab.tokens[id] = std::move(token);
  }
  return vocab;
}

// Parses merges.txt text. Lines end with \n or \r\n.
inline std::vector<MergeRule> parse_merges_txt(std::string_view text,
                                               std::string_view name = "merges.txt") {
  FIBER_CHECK(utf8_invalid_offset(text) == std::string_view::npos, name, ": invalid UTF-8 at byte ",
              utf8_invalid_offset(text));
  std::vector<MergeRule> merges;
  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("#version")) continue;
    const std::size_t space = line.find(' ');
    FIBER_CHECK(space != std::string_view::npos && line.find(' ', space + 1) == std::string_view::npos,
                name, ": line ", line_no, " is '", excerpt(line, 80),
                "', expected two tokens separated by one space");
    merges.push_back({std::string(line.substr(0, space)), std::string(line.substr(space + 1)), line_no});
  }
  FIBER_CHECK(!merges.empty() || !text.empty(), name, ": the file is empty");
  return merges;
}

inline Vocab read_vocab_json(const std::filesystem::path& path) {
  return parse_vocab_json(fiber::detail::read_whole_file<std::string>(path, "vocab.json"), path.string());
}

inline std::vector<MergeRule> read_merges_txt(const std::filesystem::path& path) {
  return parse_merges_txt(fiber::detail::read_whole_file<std::string>(path, "merges.txt"), path.string());
}

}  // namespace fiber::text
