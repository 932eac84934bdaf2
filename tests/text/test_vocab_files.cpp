#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fiber/text/bpe.hpp"
#include "fiber/text/tokenizer.hpp"
#include "text_fixtures.hpp"

using namespace fiber::text;

namespace {
// A well-formed pair: a..c, their merges, and the RoBERTa special tokens.
const char* good_vocab = R"({"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"a":4,"b":5,"c":6,"ab":7,"abc":8,"<mask>":9})";
const char* good_merges = "#version: 0.2\na b\nab c\n";

void check_vocab_error(std::string_view json, const char* message) {
  CAPTURE(json);
  CHECK_THROWS_WITH_AS(parse_vocab_json(json, "v.json"), doctest::Contains(message), fiber::Error);
}
void check_merges_error(std::string_view vocab, std::string_view merges, const char* message) {
  CAPTURE(merges);
  CHECK_THROWS_WITH_AS(BpeModel(parse_vocab_json(vocab), parse_merges_txt(merges, "m.txt"), "m.txt"),
                       doctest::Contains(message), fiber::Error);
}
}  // namespace

TEST_CASE("the well-formed minimal files load") {
  const auto tok = Tokenizer::from_strings(good_vocab, good_merges);
  CHECK(tok.vocab_size() == 10);
  CHECK(tok.model().merge_count() == 2);
  CHECK(tok.encode("abc").ids == std::vector<std::int32_t>{0, 8, 2});
  // \r\n line ends and a missing final newline are accepted; "#version" lines anywhere are skipped.
  CHECK(BpeModel::from_strings(good_vocab, "a b\r\n#version: 0.2\r\nab c").merge_count() == 2);
}

TEST_CASE("malformed vocab.json: each gives its message") {
  check_vocab_error("", "v.json: not valid JSON near byte 1");
  check_vocab_error("{\"a\":0", "v.json: not valid JSON");
  check_vocab_error("[\"a\",\"b\"]", "v.json: expected an object mapping tokens to ids, found an array");
  check_vocab_error("42", "v.json: expected an object mapping tokens to ids");
  check_vocab_error("\"text\"", "v.json: expected an object mapping tokens to ids");
  check_vocab_error("{}", "v.json: the vocabulary is empty");
  check_vocab_error(R"({"a":0,"b":"1"})", "the id of token 'b' is \"1\", expected an integer id");
  check_vocab_error(R"({"a":0,"b":1.5})", "the id of token 'b' is 1.5, expected an integer id");
  check_vocab_error(R"({"a":0,"b":null})", "the id of token 'b' is null, expected an integer id");
  check_vocab_error(R"({"a":0,"b":-1})", "the id of token 'b' is -1, expected a non-negative integer");
  check_vocab_error(R"({"a":0,"b":[1]})", "the id of token 'b' is an array, expected an integer id");
  check_vocab_error(R"({"a":0,"b":{"c":1}})", "expected an integer id");
  check_vocab_error(R"({"a":0,"b":0})", "v.json: duplicate id 0 (tokens 'a' and 'b')");
  check_vocab_error(R"({"a":0,"a":1})", "v.json: duplicate token 'a' (ids 0 and 1)");
  check_vocab_error(R"({"a":0,"b":5})", "the id of token 'b' is 5, expected ids 0..1 (one per entry, no gaps)");
  check_vocab_error("{\"a\xFF\":0}", "v.json: not valid JSON");
  check_vocab_error(R"({"a":0} trailing)", "v.json: not valid JSON");
}

TEST_CASE("malformed merges.txt: each gives its message") {
  check_merges_error(good_vocab, "", "m.txt: the file is empty");
  check_merges_error(good_vocab, "a b\nabc\n", "m.txt: line 2 is 'abc', expected two tokens separated by one space");
  check_merges_error(good_vocab, "a b c\n", "m.txt: line 1 is 'a b c', expected two tokens");
  check_merges_error(good_vocab, "a b\n\nab c\n", "m.txt: line 2 is '', expected two tokens");
  check_merges_error(good_vocab, "a  b\n", "m.txt: line 1 is 'a  b'");
  check_merges_error(good_vocab, "a b\nx c\n", "m.txt: line 2: merge part 'x' is not in the vocabulary");
  check_merges_error(good_vocab, "a x\n", "m.txt: line 1: merge part 'x' is not in the vocabulary");
  check_merges_error(good_vocab, "b c\n", "m.txt: line 1: merge result 'bc' is not in the vocabulary");
  check_merges_error(good_vocab, "a \xFF\n", "m.txt: invalid UTF-8 at byte 2");
}

TEST_CASE("missing special tokens are named") {
  const char* no_mask = R"({"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"a":4})";
  CHECK_THROWS_WITH_AS(Tokenizer::from_strings(no_mask, "#version: 0.2\n"),
                       doctest::Contains("Tokenizer: the mask token '<mask>' is not in the vocabulary"), fiber::Error);
  const char* no_bos = R"({"<pad>":0,"</s>":1,"<unk>":2,"<mask>":3})";
  CHECK_THROWS_WITH_AS(Tokenizer::from_strings(no_bos, "#version: 0.2\n"),
                       doctest::Contains("the bos token '<s>' is not in the vocabulary"), fiber::Error);
  fiber::text::TokenizerOptions empty_pad;
  empty_pad.special.pad = "";
  CHECK_THROWS_WITH_AS(Tokenizer::from_strings(no_mask, "#version: 0.2\n", empty_pad),
                       doctest::Contains("Tokenizer: the pad token must not be empty"), fiber::Error);
}

TEST_CASE("missing and unreadable files are named") {
  CHECK_THROWS_WITH_AS(Tokenizer::from_files("/nonexistent/vocab.json", testing::data_path("merges.txt")),
                       doctest::Contains("vocab.json '/nonexistent/vocab.json': no such file"), fiber::Error);
  CHECK_THROWS_WITH_AS(Tokenizer::from_files(testing::data_path("vocab.json"), "/nonexistent/m.txt"),
                       doctest::Contains("merges.txt '/nonexistent/m.txt': no such file"), fiber::Error);
  // A merges file whose line does not parse names the file by its path.
  const auto path = std::filesystem::temp_directory_path() / "fiber_test_bad_merges.txt";
  { std::ofstream(path) << "#version: 0.2\n\xC4\xA0 t\nnot-a-merge\n"; }
  CHECK_THROWS_WITH_AS(Tokenizer::from_files(testing::data_path("vocab.json"), path),
                       doctest::Contains((path.string() + ": line 3 is 'not-a-merge'").c_str()), fiber::Error);
  std::filesystem::remove(path);
}
