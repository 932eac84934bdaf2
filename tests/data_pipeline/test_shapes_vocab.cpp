// The shapes-world tokenizer files: every world word is one token in both forms, other text still
// tokenizes, and the vocabulary is fixed (shapes_world_vocab_size).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fiber/text/tokenizer.hpp"
#include "fiber/train/shapes_scene.hpp"
#include "fiber/train/shapes_vocab.hpp"

using namespace fiber;

namespace {
const text::Tokenizer& world_tokenizer() {
  static const text::Tokenizer t = [] {
    const train::ShapesVocab v = train::build_shapes_vocab();
    return text::Tokenizer::from_strings(v.vocab_json(), v.merges_txt());
  }();
  return t;
}
// " word": built with append (GCC 12 warns falsely about operator+ on a temporary here).
std::string spaced(std::string_view w) { return std::string(" ").append(w); }
std::vector<std::int32_t> ids(const std::string& s, bool framed = false) {
  text::EncodeOptions o;
  o.add_special_tokens = framed;
  return world_tokenizer().encode(s, o).ids;
}
}  // namespace

TEST_CASE("the vocabulary has RoBERTa's layout and the documented size") {
  const train::ShapesVocab v = train::build_shapes_vocab();
  REQUIRE(std::int64_t(v.tokens.size()) == train::shapes_world_vocab_size);
  CHECK(train::shapes_world_vocab_size <= 512);
  CHECK(v.tokens[0] == "<s>");
  CHECK(v.tokens[1] == "<pad>");
  CHECK(v.tokens[2] == "</s>");
  CHECK(v.tokens[3] == "<unk>");
  CHECK(v.tokens[4 + 'a'] == "a");
  CHECK(v.tokens[4 + ' '] == "Ġ");
  CHECK(v.tokens.back() == "<mask>");
  const text::Tokenizer& t = world_tokenizer();
  CHECK(t.vocab_size() == std::size_t(train::shapes_world_vocab_size));
  CHECK(t.bos_id() == 0);
  CHECK(t.pad_id() == 1);
  CHECK(t.eos_id() == 2);
  CHECK(t.mask_id() == train::shapes_world_vocab_size - 1);
  // Built twice, the same bytes: nothing depends on a seed or on iteration order of a hash map.
  CHECK(train::build_shapes_vocab().vocab_json() == v.vocab_json());
  CHECK(train::build_shapes_vocab().merges_txt() == v.merges_txt());
}

TEST_CASE("every world word is one token, first and after a space") {
  for (std::string_view w : train::shapes_world_words) {
    INFO(w);
    CHECK(ids(std::string(w)).size() == 1);
    CHECK(ids(spaced(w)).size() == 1);
  }
  // The ids the docs list (docs/data.md): changing the word list or the training changes them.
  CHECK(ids("a") == std::vector<std::int32_t>{101});
  CHECK(ids(" circle") == std::vector<std::int32_t>{326});
  CHECK(ids(" red") == std::vector<std::int32_t>{335});
  // Every caption word the scenes use is in the list.
  for (auto names : {std::vector<std::string_view>(train::shape_kind_names.begin(), train::shape_kind_names.end()),
                     std::vector<std::string_view>(train::shape_size_names.begin(), train::shape_size_names.end())})
    for (std::string_view n : names) CHECK(ids(spaced(n)).size() == 1);
  for (const auto& c : train::shape_colours) CHECK(ids(spaced(c.name)).size() == 1);
}

TEST_CASE("captions are framed <s> ... </s>, one token a word") {
  const std::vector<std::int32_t> caption = ids("a small red circle left of a large blue square", true);
  REQUIRE(caption.size() == 12);
  CHECK(caption.front() == 0);
  CHECK(caption.back() == 2);
  CHECK(world_tokenizer().decode(caption, true) == "a small red circle left of a large blue square");
}

TEST_CASE("other text still tokenizes through the byte symbols") {
  const std::string text = "A zebra, 42 ünïcode 😀 <mask>";
  const std::vector<std::int32_t> got = ids(text);
  CHECK(got.size() > 10);
  CHECK(world_tokenizer().decode(got) == text);
}
