// CoarsePipeline on the tiny official-code checkpoint: tokenizing, batching with padding, and
// that every API call gives what the model's own paths give (padding never changes a result).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "coarse_fixtures.hpp"
#include "fiber/models/coarse_pipeline.hpp"

using namespace fiber;
using Pipeline = CoarsePipeline<models::FiberTinyCoarse>;

namespace {
Pipeline load_pipeline() {
  return Pipeline::load(test::coarse_fixture("tiny_coarse.ckpt"), std::string(FIBER_TEST_DATA_DIR) + "/text/vocab.json",
                        std::string(FIBER_TEST_DATA_DIR) + "/text/merges.txt");
}
// Shared by the tests that only read from it.
const Pipeline& pipeline() {
  static const Pipeline p = load_pipeline();
  return p;
}
double max_abs_diff(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.shape() == b.shape());
  const Tensor<float> ac = a.contiguous(), bc = b.contiguous();
  double d = 0;
  for (std::int64_t i = 0; i < ac.numel(); ++i) d = std::max(d, double(std::abs(ac.data()[i] - bc.data()[i])));
  return d;
}
}  // namespace

TEST_CASE("coarse pipeline: texts are framed, padded to the longest and masked") {
  const TextBatch b = pipeline().tokenize({"a b c", "you"});
  REQUIRE(b.ids.shape() == Shape{2, 5});
  const std::int64_t want_mask[10] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  for (int i = 0; i < 10; ++i) CHECK(b.mask.data()[i] == want_mask[i]);
  CHECK(b.ids.data()[0] == 0);   // <s>
  CHECK(b.ids.data()[4] == 2);   // </s>
  CHECK(b.ids.data()[8] == 1);   // <pad>
  // Ids beyond the model's vocabulary (the fixture vocabulary has 4001 tokens, the model 1000).
  CHECK_THROWS_WITH_AS(pipeline().tokenize({"the red mug"}), doctest::Contains("outside this model's vocabulary of 1000"),
                       Error);
}

TEST_CASE("coarse pipeline: a text's embedding does not depend on the batch it is padded in") {
  const Tensor<float> alone = pipeline().embed_texts({"you"});
  const Tensor<float> batched = pipeline().embed_texts({"a b c an a", "you"});
  CHECK(max_abs_diff(alone.select(0, 0), batched.select(0, 1)) < 1e-6);
}

TEST_CASE("coarse pipeline: match gives the model's ITM logits, probability, rank score and ITC cosine") {
  Generator gen(5);
  const Tensor<float> pixels = randn<float>({2, 3, 128, 128}, gen);
  const TextBatch texts = pipeline().tokenize({"a b c", "you"});
  const MatchScores s = pipeline().match(pixels, texts);
  NoGrad guard;
  const auto& m = pipeline().model();
  const auto f = m.fuse(Var<float>(pixels), texts.ids, texts.mask);
  const Tensor<float> logits = m.itm_logits(f.cls_feats).value();
  CHECK(max_abs_diff(s.itm_logits, logits) == 0);
  for (int i = 0; i < 2; ++i) {
    const double l0 = logits.data()[2 * i], l1 = logits.data()[2 * i + 1];
    CHECK(s.itm_probability.data()[i] == doctest::Approx(1 / (1 + std::exp(l0 - l1))).epsilon(1e-6));
    CHECK(s.rank_score.data()[i] == doctest::Approx(l1).epsilon(1e-6));  // rank_output is the match row
  }
  const Tensor<float> ei = pipeline().embed_images(pixels), et = pipeline().embed_texts(texts);
  for (int i = 0; i < 2; ++i) {
    double dot = 0;
    for (int j = 0; j < 16; ++j) dot += double(ei.data()[i * 16 + j]) * et.data()[i * 16 + j];
    CHECK(s.itc_similarity.data()[i] == doctest::Approx(dot).epsilon(1e-5));
  }
  CHECK_THROWS_WITH_AS(pipeline().match(pixels, pipeline().tokenize({"you"})), doctest::Contains("2 images for 1 texts"), Error);
}

TEST_CASE("coarse pipeline: from the second call of a shape on, no tensor memory from the system") {
  Pipeline p = load_pipeline();  // its own: the buffer counts start at zero
  Generator gen(7);
  const Tensor<float> pixels = randn<float>({2, 3, 128, 128}, gen);
  const TextBatch texts = p.tokenize({"a b c", "you"});
  // Every output of a call, as plain vectors (tensors kept alive would keep their blocks).
  auto run = [&] {
    const MatchScores s = p.match(pixels, texts);
    return std::vector<std::vector<float>>{s.itm_logits.to_vector(), s.itm_probability.to_vector(),
                                           s.rank_score.to_vector(), s.itc_similarity.to_vector(),
                                           p.mlm_logits(pixels, texts).to_vector()};
  };
  const auto first = run();
  const StoragePoolStats after_first = p.buffer_stats();
  CHECK(after_first.misses > 0);
  CHECK(after_first.live_bytes == 0);  // every tensor of the calls went back to the buffers
  const std::int64_t system0 = allocation_stats().system_allocations.load();
  const auto second = run();
  CHECK(allocation_stats().system_allocations.load() == system0);
  CHECK(p.buffer_stats().misses == after_first.misses);
  CHECK(p.buffer_stats().hits > after_first.hits);
  CHECK(second == first);  // recycled memory changes nothing, bit for bit
  p.release_buffers();
  CHECK(p.buffer_stats().cached_bytes == 0);
}

TEST_CASE("coarse pipeline: weights of another model are one clear error") {
  // The tiny weights into FIBER-B: every shape differs; the message lists them.
  CHECK_THROWS_WITH_AS(
      (CoarsePipeline<models::FiberBaseCoarse384>::load(test::coarse_fixture("tiny_coarse.ckpt"),
                                                        std::string(FIBER_TEST_DATA_DIR) + "/text/vocab.json",
                                                        std::string(FIBER_TEST_DATA_DIR) + "/text/merges.txt")),
      doctest::Contains("mismatched"), Error);
}
