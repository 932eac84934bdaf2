// Prompts: parity with the OFFICIAL functions (tests/reference/make_prompts.py runs clean_name,
// create_queries_and_maps, create_positive_map and create_positive_map_label_to_token_from_positive_map
// from the microsoft/FIBER mirror with RobertaTokenizerFast on the fixture vocabulary): the token
// columns of each phrase (spans starting or ending on spaces take the official fallbacks; a phrase
// with two spans; non-ASCII text), the detection prompt text and its maps. Exact. Then what the
// official code does silently and we refuse: a phrase with no token, one cut by the 256-token
// limit; and the chunking of long category lists.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fiber/detection/prompt.hpp"
#include "test_util.hpp"

namespace det = fiber::detection;
namespace text = fiber::text;

namespace {
const text::Tokenizer& tokenizer() {
  static const text::Tokenizer tok = text::Tokenizer::from_files(std::string(FIBER_TEST_DATA_DIR) + "/text/vocab.json",
                                                                 std::string(FIBER_TEST_DATA_DIR) + "/text/merges.txt");
  return tok;
}

const nlohmann::json& fixture() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(FIBER_TEST_DATA_DIR) + "/detection/prompts.json", std::ios::binary);
    REQUIRE(in.good());
    return nlohmann::json::parse(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  }();
  return j;
}

det::PhraseTokens as_tokens(const nlohmann::json& j) { return j.get<det::PhraseTokens>(); }
}  // namespace

TEST_CASE("phrase tokens of caption spans equal the official create_positive_map") {
  int checked = 0, refused = 0;
  for (const auto& c : fixture()["captions"]) {
    const std::string text = c["text"];
    CAPTURE(text);
    const text::Encoding enc = tokenizer().encode(text);
    REQUIRE(std::vector<std::int32_t>(enc.ids) == c["ids"].get<std::vector<std::int32_t>>());
    det::Prompt prompt{text, {}};
    for (const auto& spans : c["spans"]) {
      det::PromptPhrase phrase{"phrase", {}};
      for (const auto& s : spans) phrase.spans.push_back({s[0].get<std::size_t>(), s[1].get<std::size_t>()});
      prompt.phrases.push_back(phrase);
    }
    const det::PhraseTokens want = as_tokens(c["tokens"]);
    bool any_empty = false;
    for (const auto& t : want) any_empty |= t.empty();
    if (any_empty) {  // the official leaves such a phrase without tokens (never scored); we refuse
      CHECK_THROWS_WITH_AS(det::phrase_tokens(enc, prompt), doctest::Contains("covers no token of the prompt"),
                           fiber::Error);
      ++refused;
      continue;
    }
    CHECK(det::phrase_tokens(enc, prompt) == want);
    ++checked;
  }
  CHECK(checked == 7);
  CHECK(refused == 1);
}

TEST_CASE("detection prompts equal the official create_queries_and_maps (clean_name, '. ')") {
  for (const auto& c : fixture()["detection"]) {
    const auto categories = c["categories"].get<std::vector<std::string>>();
    const auto cleaned = c["cleaned"].get<std::vector<std::string>>();
    CAPTURE(c["text"].get<std::string>());
    for (std::size_t i = 0; i < categories.size(); ++i) CHECK(det::clean_category_name(categories[i]) == cleaned[i]);
    const det::Prompt prompt = det::detection_prompt(categories);
    CHECK(prompt.text == c["text"].get<std::string>());
    REQUIRE(prompt.phrases.size() == categories.size());
    CHECK(det::phrase_tokens(tokenizer().encode(prompt.text), prompt) == as_tokens(c["tokens"]));
  }
}

TEST_CASE("caption_prompt finds every occurrence of each phrase, case-insensitive, in code points") {
  const std::vector<std::string> phrases{"Cat", "brûlée"};
  const det::Prompt p = det::caption_prompt("A cat, a CAT and crème brûlée", phrases);
  REQUIRE(p.phrases.size() == 2);
  CHECK(p.phrases[0].spans == std::vector<text::CharSpan>{{2, 5}, {9, 12}});
  CHECK(p.phrases[1].spans == std::vector<text::CharSpan>{{23, 29}});  // "crème " is 6 code points, 7 bytes
  CHECK(p.phrases[0].name == "Cat");
  const std::vector<std::string> missing{"dog"};
  CHECK_THROWS_WITH_AS(det::caption_prompt("a cat", missing), doctest::Contains("phrase 0 (dog) does not occur"),
                       fiber::Error);
  const std::vector<std::string> empty{""};
  CHECK_THROWS_WITH_AS(det::caption_prompt("a cat", empty), doctest::Contains("phrase 0 is empty"), fiber::Error);
  const std::vector<std::string> bad{"\xff"};
  CHECK_THROWS_WITH_AS(det::caption_prompt("a cat", bad), doctest::Contains("not valid UTF-8"), fiber::Error);
}

TEST_CASE("split_detection_prompt and clean_category_name by hand") {
  CHECK(det::split_detection_prompt("cat. dog.traffic light .  ") ==
        std::vector<std::string>{"cat", "dog", "traffic light"});
  CHECK(det::split_detection_prompt("person") == std::vector<std::string>{"person"});
  CHECK_THROWS_WITH_AS(det::split_detection_prompt(" . . "), doctest::Contains("no category"), fiber::Error);
  CHECK(det::clean_category_name("a (b) c (d) e") == "a e");  // greedy: first "(" to last ")", then "  " -> " "
  CHECK(det::clean_category_name("a (b\nc) d") == "a (b\nc) d");  // "." does not cross a line
  CHECK(det::clean_category_name("open (") == "open (");
  CHECK(det::clean_category_name("   ") == "  ");  // pairs, left to right
  const std::vector<std::string> cats{"dog", "(all of it)"};
  CHECK_THROWS_WITH_AS(det::detection_prompt(cats), doctest::Contains("category 1 ((all of it)) is empty once cleaned"),
                       fiber::Error);
}

TEST_CASE("tokens past the model's 256 are refused; long category lists split into prompts that fit") {
  std::vector<std::string> cats;
  for (int i = 0; i < 150; ++i) cats.push_back("thing " + std::to_string(i));
  const det::Prompt whole = det::detection_prompt(cats);
  const text::Encoding enc = tokenizer().encode(whole.text);
  REQUIRE(enc.size() > 256);
  CHECK_THROWS_WITH_AS(det::phrase_tokens(enc, whole), doctest::Contains("past the 256 the model reads"), fiber::Error);

  const auto chunks = det::chunk_detection_prompt(cats, tokenizer());
  REQUIRE(chunks.size() >= 2);
  std::size_t next = 0;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    CAPTURE(i);
    CHECK(chunks[i].first_category == next);
    const text::Encoding e = tokenizer().encode(chunks[i].prompt.text);
    CHECK(e.size() <= 256);
    const det::PhraseTokens t = det::phrase_tokens(e, chunks[i].prompt);
    CHECK(t.size() == chunks[i].prompt.phrases.size());
    CHECK(chunks[i].prompt.phrases.front().name == cats[next]);
    // Greedy: the next category would not have fit.
    if (i + 1 < chunks.size()) {
      const std::span<const std::string> grown(cats.data() + next, chunks[i].prompt.phrases.size() + 1);
      CHECK(tokenizer().encode(det::detection_prompt(grown).text).size() > 256);
    }
    next += chunks[i].prompt.phrases.size();
  }
  CHECK(next == cats.size());
  CHECK(det::chunk_detection_prompt(cats, tokenizer(), 256, 40).size() == 4);  // at most 40 per prompt
  const std::vector<std::string> huge{std::string(3000, 'q')};
  CHECK_THROWS_WITH_AS(det::chunk_detection_prompt(huge, tokenizer()), doctest::Contains("alone is more than 256 tokens"),
                       fiber::Error);
}

TEST_CASE("merge_detections: labels shifted per chunk, best first, cap with ties") {
  using fiber::Tensor;
  det::Detections<float> a{Tensor<float>::from_data({2, 4}, {0, 0, 1, 1, 2, 2, 3, 3}),
                           Tensor<float>::from_data({2}, {0.9f, 0.5f}), {1, 2}};
  det::Detections<float> b{Tensor<float>::from_data({2, 4}, {4, 4, 5, 5, 6, 6, 7, 7}),
                           Tensor<float>::from_data({2}, {0.7f, 0.5f}), {1, 1}};
  const std::vector<det::Detections<float>> parts{a, b};
  const std::vector<std::int64_t> offsets{0, 40};
  const det::Detections<float> m = det::merge_detections<float>(parts, offsets, 2);
  CHECK(m.labels == std::vector<std::int64_t>{1, 41});
  CHECK(m.scores.to_vector() == std::vector<float>{0.9f, 0.7f});
  CHECK(m.boxes.to_vector() == std::vector<float>{0, 0, 1, 1, 4, 4, 5, 5});
  const det::Detections<float> tied = det::merge_detections<float>(parts, offsets, 3);  // 0.5 twice at the cap
  CHECK(tied.labels == std::vector<std::int64_t>{1, 41, 2, 41});
  CHECK_THROWS_WITH_AS(det::merge_detections<float>(parts, std::vector<std::int64_t>{0}, 2),
                       doctest::Contains("2 parts but 1 label offsets"), fiber::Error);
}
