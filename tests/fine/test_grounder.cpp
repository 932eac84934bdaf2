// The Grounder: prompt -> phrase tokens, frame -> preprocessing, the model, post-processing and
// boxes in the frame's pixels; errors. The model's numbers are checked against the official
// modules in test_fiber_fine.cpp; here, with the same tiny weights, what the Grounder adds.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "fiber/models/grounder.hpp"
#include "test_util.hpp"
#include "tiny_fine.hpp"

using namespace fiber;

namespace {
using TinyGrounder = Grounder<models::FiberTinyFine>;

std::shared_ptr<TinyGrounder::Model> tiny_model() {
  auto model = std::make_shared<TinyGrounder::Model>();
  nn::LoadOptions<float> o;
  o.strict = false;
  nn::load_state_dict<float>(*model, io::open_checkpoint(test::fine_fixture("fusion_v2_weights.safetensors")), o);
  nn::load_state_dict<float>(*model, io::open_checkpoint(test::fine_fixture("end_to_end_weights.safetensors")), o);
  return model;
}

text::Tokenizer test_tokenizer() {
  const std::string dir = std::string(FIBER_TEST_DATA_DIR) + "/text/";
  return text::Tokenizer::from_files(dir + "vocab.json", dir + "merges.txt");
}

io::Image gradient_frame(int w, int h) {
  io::Image im(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) im.pixels[std::size_t((y * w + x) * 3 + c)] = std::uint8_t((x * 7 + y * 3 + c * 50) % 256);
  return im;
}
}  // namespace

TEST_CASE("grounder: the prompt's phrases become their tokens; detection prompts split at '.'") {
  TinyGrounder g(tiny_model(), test_tokenizer());
  g.set_prompt("a cat on a mat", {"cat", "mat"});
  // <s> a Ġcat Ġon Ġa Ġm at </s>: "cat" is token 2, "mat" tokens 5-6.
  CHECK(g.phrase_tokens() == detection::PhraseTokens{{2}, {5, 6}});
  CHECK(g.prompt().phrases.size() == 2);
  g.set_prompt("a. b");  // a detection prompt: one phrase per category (the test vocabulary has no short 'cat')
  REQUIRE(g.prompt().phrases.size() == 2);
  CHECK(g.prompt().phrases[0].name == "a");
  CHECK(g.prompt().phrases[1].name == "b");
  CHECK(g.phrase_tokens() == detection::PhraseTokens{{1}, {3}});  // <s> a . Ġb </s>
}

TEST_CASE("grounder: a frame of any size gives boxes in its own pixels, by score, from the model's detections") {
  GroundOptions opt;
  opt.min_size = 64;  // a small test frame: 150 x 90 resized to 106 x 64 (int(64 · 150 / 90); inside 128 x 64)
  opt.max_size = 200;
  opt.postprocess.detections_per_image = 0;
  TinyGrounder g(tiny_model(), test_tokenizer(), opt);
  g.set_prompt("a cat on a mat", {"cat", "mat"});
  const io::Image frame = gradient_frame(150, 90);
  const Grounding r = g.ground(frame);
  CHECK(r.image_width == 150);
  CHECK(r.image_height == 90);
  REQUIRE(!r.detections.empty());

  // The same pass by hand: preprocessing, model, post-processing in the resized frame.
  const io::FineGrainedInput in = io::preprocess_fine_grained(frame, 64, 200, 32);
  CHECK(in.resized_width == 106);
  CHECK(in.resized_height == 64);
  NoGrad no_grad;
  const Tensor<float> pixels = io::to_tensor(in.image);
  const auto ids = Tensor<std::int64_t>::from_data({1, 16}, {0, 68, 714, 885, 341, 309, 298, 2, 1, 1, 1, 1, 1, 1, 1, 1});
  Tensor<std::int64_t> valid = Tensor<std::int64_t>::zeros({1, 16});
  for (int t = 0; t < 8; ++t) valid.data()[t] = 1;
  const auto out = g.model()(Var<float>(pixels.reshape({1, 3, pixels.size(1), pixels.size(2)})), g.model().text_prefix(ids, valid));
  const auto d = detection::postprocess<float>(models::image_predictions(out.head, 0, models::level_anchors(out.head)),
                                               {{2}, {5, 6}}, 106, 64, opt.postprocess);
  REQUIRE(d.size() == std::int64_t(r.detections.size()));
  const float rx = 150.0f / 106.0f, ry = 90.0f / 64.0f;
  for (std::size_t k = 0; k < r.detections.size(); ++k) {
    CAPTURE(k);
    const GroundedBox& b = r.detections[k];
    CHECK(b.label == d.labels[k]);
    CHECK(b.phrase == (b.label == 1 ? "cat" : "mat"));
    CHECK(b.score == d.scores.data()[k]);
    for (int c = 0; c < 4; ++c) CHECK(b.box[std::size_t(c)] == doctest::Approx(d.boxes.data()[4 * k + c] * (c % 2 ? ry : rx)));
    CHECK(b.box[0] >= 0);
    CHECK(b.box[2] <= 150);
    CHECK(b.box[3] <= 90);
    if (k > 0) CHECK(b.score <= r.detections[k - 1].score);
  }
}

TEST_CASE("grounder: from the second frame of a size on, a frame takes no tensor memory from the system") {
  GroundOptions opt;
  opt.min_size = 64;
  opt.max_size = 200;
  opt.postprocess.detections_per_image = 0;
  TinyGrounder g(tiny_model(), test_tokenizer(), opt);
  g.set_prompt("a cat on a mat", {"cat", "mat"});
  const Grounding first = g.ground(gradient_frame(150, 90));
  REQUIRE(!first.detections.empty());
  const auto after_first = g.buffer_stats();
  CHECK(after_first.misses > 0);
  CHECK(after_first.live_bytes == 0);  // every frame tensor went back to the buffers
  const auto system0 = allocation_stats().system_allocations.load();
  const Grounding second = g.ground(gradient_frame(150, 90));
  CHECK(allocation_stats().system_allocations.load() == system0);
  CHECK(g.buffer_stats().misses == after_first.misses);
  CHECK(g.buffer_stats().hits > after_first.hits);
  // Recycled memory changes nothing: the same detections, bit for bit.
  REQUIRE(second.detections.size() == first.detections.size());
  for (std::size_t k = 0; k < first.detections.size(); ++k) {
    CHECK(second.detections[k].box == first.detections[k].box);
    CHECK(second.detections[k].score == first.detections[k].score);
    CHECK(second.detections[k].label == first.detections[k].label);
  }
  // Another size: the old size's buffers are freed first, so the grounder then holds what a fresh
  // one holds after one frame of the new size.
  const Grounding other = g.ground(gradient_frame(90, 150));
  CHECK(other.image_width == 90);
  TinyGrounder fresh(tiny_model(), test_tokenizer(), opt);
  fresh.set_prompt("a cat on a mat", {"cat", "mat"});
  (void)fresh.ground(gradient_frame(90, 150));
  CHECK(g.buffer_stats().cached_bytes == fresh.buffer_stats().cached_bytes);
  // The first size again: the results are unchanged.
  const Grounding again = g.ground(gradient_frame(150, 90));
  REQUIRE(again.detections.size() == first.detections.size());
  for (std::size_t k = 0; k < first.detections.size(); ++k) CHECK(again.detections[k].score == first.detections[k].score);
  g.release_buffers();
  CHECK(g.buffer_stats().cached_bytes == 0);

  // keep_buffers_of_every_size: frames alternating between two sizes take nothing from the system
  // once each size has been seen.
  opt.keep_buffers_of_every_size = true;
  TinyGrounder both(tiny_model(), test_tokenizer(), opt);
  both.set_prompt("a cat on a mat", {"cat", "mat"});
  (void)both.ground(gradient_frame(150, 90));
  (void)both.ground(gradient_frame(90, 150));
  const auto seen_both = both.buffer_stats();
  (void)both.ground(gradient_frame(150, 90));
  (void)both.ground(gradient_frame(90, 150));
  CHECK(both.buffer_stats().misses == seen_both.misses);
  CHECK(both.buffer_stats().cached_bytes == seen_both.cached_bytes);
}

TEST_CASE("grounder: errors name the problem") {
  TinyGrounder g(tiny_model(), test_tokenizer());
  CHECK_THROWS_WITH_AS(g.ground(gradient_frame(40, 30)), doctest::Contains("no prompt"), Error);
  CHECK_THROWS_WITH_AS(g.set_prompt("a cat on a mat", {"dog"}), doctest::Contains("dog"), Error);
  // "red" is token 1678 of the test vocabulary, beyond the tiny model's 1000.
  CHECK_THROWS_WITH_AS(g.set_prompt("a red cat", {"cat"}), doctest::Contains("outside this model's vocabulary"), Error);
  // 20 phrases in a prompt the tiny model cuts at 16 tokens.
  CHECK_THROWS_WITH_AS(g.set_prompt("a. b. c. d. e. f. g. h. i. j. k. l"), doctest::Contains("past the 16"), Error);
}
