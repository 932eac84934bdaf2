#include <doctest/doctest.h>

#include <algorithm>

#include "text_fixtures.hpp"

using namespace fiber::text;

TEST_CASE("framing, special ids and tokens of the fixture vocabulary") {
  const auto& tok = testing::fixture_tokenizer();
  CHECK(tok.bos_id() == 0);
  CHECK(tok.pad_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.unk_id() == 3);
  CHECK(tok.mask_id() == static_cast<std::int32_t>(tok.vocab_size()) - 1);
  const Encoding e = tok.encode("Hello world");
  REQUIRE(e.size() >= 3);
  CHECK(e.ids.front() == tok.bos_id());
  CHECK(e.ids.back() == tok.eos_id());
  CHECK(e.tokens.front() == "<s>");
  CHECK(e.tokens.back() == "</s>");
  CHECK(e.offsets.front() == CharSpan{0, 0});
  CHECK(e.special_tokens_mask.front() == 1);
  CHECK(e.special_tokens_mask[1] == 0);
  CHECK(e.attention_mask == std::vector<std::int32_t>(e.size(), 1));
  EncodeOptions bare;
  bare.add_special_tokens = false;
  CHECK(tok.encode("Hello world", bare).size() == e.size() - 2);
}

TEST_CASE("special-token strings in the text: matched by default, plain text when disabled") {
  const auto& tok = testing::fixture_tokenizer();
  const Encoding e = tok.encode("a <mask> b");
  CHECK(std::count(e.ids.begin(), e.ids.end(), tok.mask_id()) == 1);
  TokenizerOptions opt;
  opt.match_special_tokens_in_text = false;
  const auto literal = Tokenizer::from_files(testing::data_path("vocab.json"), testing::data_path("merges.txt"), opt);
  const Encoding l = literal.encode("a <mask> b");
  CHECK(std::count(l.ids.begin(), l.ids.end(), tok.mask_id()) == 0);
  CHECK(literal.decode(l.ids, true) == "a <mask> b");
}

TEST_CASE("char_to_token: spaces and out-of-range characters have no token") {
  const auto& tok = testing::fixture_tokenizer();
  const Encoding e = tok.encode("red  mug");
  CHECK(e.num_chars == 8);
  CHECK(e.char_to_token(0) == std::optional<std::size_t>(1));
  CHECK_FALSE(e.char_to_token(3).has_value());  // a space
  CHECK_FALSE(e.char_to_token(8).has_value());
  CHECK_FALSE(e.char_to_token(1000).has_value());
}

TEST_CASE("strict UTF-8 mode names the byte offset") {
  TokenizerOptions opt;
  opt.invalid_utf8 = InvalidUtf8::error;
  const auto strict = Tokenizer::from_files(testing::data_path("vocab.json"), testing::data_path("merges.txt"), opt);
  CHECK(strict.encode("fine text").size() > 2);
  CHECK_THROWS_WITH_AS(strict.encode("ab\xE3\x80 cd"), doctest::Contains("Tokenizer::encode: invalid UTF-8 at byte 2 (byte 0xe3)"),
                       fiber::Error);
  // The default replaces: one U+FFFD character for the two-byte truncated sequence.
  const Encoding e = testing::fixture_tokenizer().encode("ab\xE3\x80 cd");
  CHECK(e.num_chars == 6);
}

TEST_CASE("bad encode options are errors") {
  const auto& tok = testing::fixture_tokenizer();
  EncodeOptions opt;
  opt.truncate = true;
  CHECK_THROWS_WITH_AS(tok.encode("x", opt), doctest::Contains("truncate/pad_to_max need max_length > 0"), fiber::Error);
  opt.max_length = 1;
  CHECK_THROWS_WITH_AS(tok.encode("x", opt), doctest::Contains("max_length 1 leaves no room for <s> and </s>"), fiber::Error);
  opt.add_special_tokens = false;
  CHECK(tok.encode("hello world", opt).size() == 1);
  CHECK_THROWS_AS(tok.decode(std::vector<std::int32_t>{-5}), fiber::Error);
  CHECK_THROWS_AS(tok.decode(std::vector<std::int32_t>{static_cast<std::int32_t>(tok.vocab_size())}), fiber::Error);
}

TEST_CASE("padding without truncation keeps a longer text whole") {
  const auto& tok = testing::fixture_tokenizer();
  EncodeOptions opt;
  opt.max_length = 4;
  opt.pad_to_max = true;
  const Encoding e = tok.encode("the red mug left of the laptop", opt);
  CHECK(e.size() > 4);
  CHECK(std::count(e.ids.begin(), e.ids.end(), tok.pad_id()) == 0);
  const Encoding s = tok.encode("the", opt);
  CHECK(s.ids == std::vector<std::int32_t>{tok.bos_id(), s.ids[1], tok.eos_id(), tok.pad_id()});
  CHECK(s.attention_mask == std::vector<std::int32_t>{1, 1, 1, 0});
}

TEST_CASE("encode_batch equals encode, in order, on the thread pool") {
  const auto& tok = testing::fixture_tokenizer();
  const auto cases = testing::load_json("roberta_cases.json");
  std::vector<std::string> texts;
  for (const auto& c : cases) texts.push_back(c["text"]);
  EncodeOptions opt;
  opt.max_length = 24;
  opt.truncate = opt.pad_to_max = true;
  const auto batch = tok.encode_batch(texts, opt);
  REQUIRE(batch.size() == texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const Encoding one = tok.encode(texts[i], opt);
    CHECK(batch[i].ids == one.ids);
    CHECK(batch[i].offsets == one.offsets);
    CHECK(batch[i].size() == 24);
  }
}

TEST_CASE("decode inverts encode on well-formed text") {
  const auto& tok = testing::fixture_tokenizer();
  const auto cases = testing::load_json("roberta_cases.json");
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const auto ids = tok.encode(text).ids;  // <s> ... </s>; special tokens in the text decode to themselves
    CHECK(tok.decode(std::vector<std::int32_t>(ids.begin() + 1, ids.end() - 1)) == text);
  }
}
