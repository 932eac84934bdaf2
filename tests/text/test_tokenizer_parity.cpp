// Parity with transformers' RobertaTokenizerFast on the fixture vocabulary: exact ids, offsets
// (offset_mapping) and char_to_token for every character, on the fixtures written by
// tests/reference/make_tokenizer.py. No tolerance: everything is an integer.
#include <doctest/doctest.h>

#include "text_fixtures.hpp"

using namespace fiber::text;

namespace {
std::vector<std::vector<std::size_t>> offsets_of(const Encoding& e) {
  std::vector<std::vector<std::size_t>> out;
  for (const auto& o : e.offsets) out.push_back({o.begin, o.end});
  return out;
}
std::vector<long long> char_to_token_all(const Encoding& e, std::size_t positions) {
  std::vector<long long> out;
  for (std::size_t i = 0; i < positions; ++i) {
    auto t = e.char_to_token(i);
    out.push_back(t ? static_cast<long long>(*t) : -1);
  }
  return out;
}
}  // namespace

TEST_CASE("ids, offsets and char_to_token equal RobertaTokenizerFast on 1100 strings") {
  const auto& tok = testing::fixture_tokenizer();
  const auto cases = testing::load_json("roberta_cases.json");
  REQUIRE(cases.size() >= 1000);
  std::size_t failed = 0, tokens = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    CAPTURE(text);
    const Encoding e = tok.encode(text);
    const auto ids = c["ids"].get<std::vector<std::int32_t>>();
    const auto offsets = c["offsets"].get<std::vector<std::vector<std::size_t>>>();
    const auto c2t = c["char_to_token"].get<std::vector<long long>>();
    const bool same = e.ids == ids && offsets_of(e) == offsets && char_to_token_all(e, c2t.size()) == c2t;
    if (!same && ++failed <= 5) {
      CHECK(e.ids == ids);
      CHECK(offsets_of(e) == offsets);
      CHECK(char_to_token_all(e, c2t.size()) == c2t);
    }
    CHECK(e.num_chars + 1 == c2t.size());
    tokens += ids.size();
  }
  CHECK(failed == 0);
  MESSAGE(cases.size(), " strings, ", tokens, " tokens compared");
}

TEST_CASE("truncation and padding equal RobertaTokenizerFast") {
  const auto& tok = testing::fixture_tokenizer();
  const auto cases = testing::load_json("roberta_truncation.json");
  REQUIRE(cases.size() >= 100);
  std::size_t failed = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    EncodeOptions opt;
    opt.max_length = c["max_length"];
    opt.truncate = c["truncate"];
    opt.pad_to_max = c["pad"];
    CAPTURE(text);
    CAPTURE(opt.max_length);
    CAPTURE(opt.truncate);
    CAPTURE(opt.pad_to_max);
    const Encoding e = tok.encode(text, opt);
    const auto c2t = c["char_to_token"].get<std::vector<long long>>();
    std::vector<std::string> tokens(e.tokens.begin(), e.tokens.end());
    const bool same = e.ids == c["ids"].get<std::vector<std::int32_t>>() &&
                      e.attention_mask == c["attention_mask"].get<std::vector<std::int32_t>>() &&
                      tokens == c["tokens"].get<std::vector<std::string>>() &&
                      offsets_of(e) == c["offsets"].get<std::vector<std::vector<std::size_t>>>() &&
                      char_to_token_all(e, c2t.size()) == c2t;
    if (!same && ++failed <= 5) {
      CHECK(e.ids == c["ids"].get<std::vector<std::int32_t>>());
      CHECK(e.attention_mask == c["attention_mask"].get<std::vector<std::int32_t>>());
      CHECK(tokens == c["tokens"].get<std::vector<std::string>>());
      CHECK(offsets_of(e) == c["offsets"].get<std::vector<std::vector<std::size_t>>>());
      CHECK(char_to_token_all(e, c2t.size()) == c2t);
    }
  }
  CHECK(failed == 0);
}

TEST_CASE("ill-formed UTF-8 encodes as HF encodes Python's errors='replace' text") {
  const auto& tok = testing::fixture_tokenizer();
  const auto cases = testing::load_json("roberta_invalid_utf8.json");
  std::size_t invalid = 0;
  for (const auto& c : cases) {
    const std::string raw = testing::from_hex(c["hex"]);
    CAPTURE(c["hex"].get<std::string>());
    const Encoding e = tok.encode(raw);
    CHECK(e.ids == c["ids"].get<std::vector<std::int32_t>>());
    CHECK(offsets_of(e) == c["offsets"].get<std::vector<std::vector<std::size_t>>>());
    invalid += c["first_invalid"].get<long long>() >= 0;
  }
  CHECK(invalid >= 50);
}

TEST_CASE("decode equals HF's byte-level decoder") {
  const auto& tok = testing::fixture_tokenizer();
  const auto cases = testing::load_json("roberta_decode.json");
  REQUIRE(cases.size() >= 100);
  for (const auto& c : cases) {
    const auto ids = c["ids"].get<std::vector<std::int32_t>>();
    CAPTURE(c["ids"].dump());
    CHECK(tok.decode(ids) == c["text"].get<std::string>());
    CHECK(tok.decode(ids, true) == c["text_skip_special"].get<std::string>());
  }
}
