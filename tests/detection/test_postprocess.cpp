// Post-processing: parity with the OFFICIAL ATSSPostProcessor (tests/reference/make_detection.py,
// float32, its NMS the CUDA ml_nms kernel's semantics restated on the CPU, since the official CPU
// branch is broken) on two random sets of head outputs over three levels and four settings (the
// official defaults; a tight threshold and pre-NMS top-n; a loose NMS; no cap), and hand-worked
// cases for what the fixture cannot pin down alone: the +1 IoU at the threshold, labels that never
// suppress each other, ties at the cap, the mean over a phrase's tokens, bad input.
// Tolerances: the set of detections equal (count and labels exact); scores within 1e-6 relative
// and boxes within 1e-4 px (float32; the sigmoid and exp may round differently from PyTorch's
// vectorised ones).
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "fiber/detection/anchors.hpp"
#include "fiber/detection/postprocess.hpp"
#include "detection_fixture.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::test::detection_fixture;
namespace det = fiber::detection;

namespace {
det::PhraseTokens fixture_phrases() {
  const auto tokens = detection_fixture<std::int64_t>("post_phrase_tokens").to_vector();
  const auto lengths = detection_fixture<std::int64_t>("post_phrase_lengths").to_vector();
  det::PhraseTokens out;
  std::size_t at = 0;
  for (std::int64_t n : lengths) {
    out.emplace_back(tokens.begin() + std::ptrdiff_t(at), tokens.begin() + std::ptrdiff_t(at + std::size_t(n)));
    at += std::size_t(n);
  }
  return out;
}

Tensor<double> boxes(std::initializer_list<double> v) {
  return Tensor<double>::from_data({std::int64_t(v.size() / 4), 4}, v);
}
}  // namespace

TEST_CASE("post-processing equals the official ATSSPostProcessor (two images, four settings)") {
  const Tensor<std::int64_t> g = detection_fixture<std::int64_t>("post_grids");
  const auto size = detection_fixture<std::int64_t>("post_image_size").to_vector();
  const det::PhraseTokens phrases = fixture_phrases();
  const std::array<std::int64_t, 3> strides{8, 16, 32}, anchor_sizes{64, 128, 256};
  struct Setting {
    const char* name;
    det::PostprocessOptions opt;
  };
  const Setting settings[] = {{"default", {}},
                              {"tight", {0.3, 7, 0.5, 10, 0}},
                              {"loose_nms", {0.05, 1000, 0.9, 12, 0}},
                              {"uncapped", {0.05, 1000, 0.6, 0, 0}}};
  for (const char* image : {"a", "b"}) {
    std::vector<det::LevelPredictions<float>> levels;
    for (std::int64_t l = 0; l < g.size(0); ++l) {
      const std::string lv = std::to_string(l);
      const std::int64_t h = g.data()[2 * l], w = g.data()[2 * l + 1];
      const std::vector<double> sizes{double(anchor_sizes[std::size_t(l)])}, ratios{1.0};
      const Tensor<double> cell = det::cell_anchors(strides[std::size_t(l)], sizes, ratios);
      levels.push_back({detection_fixture(std::string("post_") + image + "_box_regression" + lv),
                        detection_fixture(std::string("post_") + image + "_centerness" + lv),
                        detection_fixture(std::string("post_") + image + "_logits" + lv),
                        det::grid_anchors<float>(h, w, strides[std::size_t(l)], cell)});
    }
    for (const Setting& s : settings) {
      CAPTURE(image);
      CAPTURE(s.name);
      const std::string key = std::string("post_") + image + "_" + s.name + "_";
      const det::Detections<float> got =
          det::postprocess<float>(levels, phrases, size[0], size[1], s.opt);
      // The official result is in candidate order; ours best first.
      const Tensor<float> want_boxes = detection_fixture(key + "boxes"), want_scores = detection_fixture(key + "scores");
      const auto want_labels = detection_fixture<std::int64_t>(key + "labels").to_vector();
      REQUIRE(got.size() == std::int64_t(want_labels.size()));
      std::vector<std::size_t> order(want_labels.size());
      std::iota(order.begin(), order.end(), std::size_t(0));
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t i, std::size_t j) { return want_scores.data()[i] > want_scores.data()[j]; });
      for (std::size_t k = 0; k < order.size(); ++k) {
        const std::size_t w = order[k];
        CAPTURE(k);
        CHECK(got.labels[k] == want_labels[w]);
        CHECK(std::abs(got.scores.data()[k] - want_scores.data()[w]) <= 1e-6 * want_scores.data()[w]);
        for (int c = 0; c < 4; ++c) CHECK(std::abs(got.boxes.data()[4 * k + c] - want_boxes.data()[4 * w + c]) <= 1e-4);
      }
    }
  }
}

TEST_CASE("ml_nms: +1 widths, strict threshold, only boxes of one label suppress each other") {
  // [0, 0, 9, 9] is 10 x 10; [0, 0, 9, 4] is 10 x 5 inside it: IoU 50 / 100 = 0.5 with the +1
  // widths (0.4 without).
  const Tensor<double> b = boxes({0, 0, 9, 9, 0, 0, 9, 4, 0, 0, 9, 9});
  const Tensor<double> s = Tensor<double>::from_data({3}, {0.5, 0.9, 0.7});
  const std::vector<std::int64_t> one_label{1, 1, 1}, two_labels{1, 1, 2};
  CHECK(det::ml_nms(b, s, one_label, 0.5) == std::vector<std::int64_t>{1, 2});    // 0.5 is not > 0.5; 2 covers 0
  CHECK(det::ml_nms(b, s, one_label, 0.49) == std::vector<std::int64_t>{1});      // 1 takes both
  CHECK(det::ml_nms(b, s, two_labels, 0.49) == std::vector<std::int64_t>{1, 2});  // 2 is another label
  CHECK(det::ml_nms(b, s, two_labels, 0.99) == std::vector<std::int64_t>{1, 2, 0});
  CHECK(det::ml_nms(Tensor<double>::zeros({0, 4}), Tensor<double>::zeros({0}), {}, 0.6).empty());
  CHECK_THROWS_WITH_AS(det::ml_nms(b, s, std::vector<std::int64_t>{1, 2}, 0.5),
                       doctest::Contains("3 boxes need as many scores and labels"), fiber::Error);
}

TEST_CASE("a phrase scores the mean of its tokens' sigmoids") {
  const Tensor<double> logits = Tensor<double>::from_data({2, 3}, {0.0, 2.0, -1.0, 3.0, -3.0, 0.5});
  const Tensor<double> got = det::phrase_scores(logits, {{0, 1}, {2}, {2, 0, 1}});
  auto sg = [](double x) { return 1 / (1 + std::exp(-x)); };
  const Tensor<double> want = Tensor<double>::from_data(
      {2, 3}, {(sg(0) + sg(2)) / 2, sg(-1), (sg(-1) + sg(0) + sg(2)) / 3, (sg(3) + sg(-3)) / 2, sg(0.5),
               (sg(0.5) + sg(3) + sg(-3)) / 3});
  FIBER_CHECK_CLOSE(got, want, 1e-15, 0);
  CHECK_THROWS_WITH_AS(det::phrase_scores(logits, {{0}, {}}), doctest::Contains("phrase 1 has no tokens"), fiber::Error);
  CHECK_THROWS_WITH_AS(det::phrase_scores(logits, {{3}}), doctest::Contains("phrase 0 names token 3 of 3"),
                       fiber::Error);
}

TEST_CASE("post-processing by hand: threshold, centerness, clipping, ties at the cap, bad shapes") {
  // One level of 1 x 3 locations, one token per phrase, three phrases. Zero codes decode to the
  // anchors; anchor 2 reaches past the 20 x 10 image and is clipped.
  det::LevelPredictions<double> level{
      Tensor<double>::zeros({4, 1, 3}), Tensor<double>::from_data({1, 1, 3}, {0.0, 0.0, 100.0}),
      Tensor<double>::from_data({3, 3}, {5, 5, -9, 5, -9, -9, -9, -9, 0}),
      boxes({0, 0, 4, 4, 10, 0, 14, 4, 15, 5, 30, 20})};
  det::PostprocessOptions opt;
  opt.detections_per_image = 2;
  const auto sg = [](double x) { return 1 / (1 + std::exp(-x)); };
  const det::Detections<double> got = det::postprocess<double>({&level, 1}, {{0}, {1}, {2}}, 20, 10, opt);
  // Candidates: (0, p1) (0, p2) (1, p1) at sqrt(sg(5) · 0.5), (2, p3) at sqrt(0.5 · sg(100)). The
  // last is best; the three others tie at the cap of 2 and all stay.
  REQUIRE(got.size() == 4);
  CHECK(got.scores.data()[0] == doctest::Approx(std::sqrt(0.5 * sg(100))).epsilon(1e-15));
  CHECK(got.labels == std::vector<std::int64_t>{3, 1, 2, 1});
  CHECK(std::vector<double>(got.boxes.data(), got.boxes.data() + 4) == std::vector<double>{15, 5, 19, 9});
  for (int k = 1; k < 4; ++k) CHECK(got.scores.data()[k] == std::sqrt(sg(5.0) * 0.5));
  opt.detections_per_image = 100;
  opt.score_threshold = 0.9;  // sg(5) = 0.993 passes, sg(0) = 0.5 does not
  CHECK(det::postprocess<double>({&level, 1}, {{0}, {1}, {2}}, 20, 10, opt).labels ==
        std::vector<std::int64_t>{1, 2, 1});
  det::LevelPredictions<double> bad = level;
  bad.token_logits = Tensor<double>::zeros({2, 3});
  CHECK_THROWS_WITH_AS(det::postprocess<double>({&bad, 1}, {{0}}, 20, 10), doctest::Contains("token logits must be [3, tokens]"),
                       fiber::Error);
  bad = level;
  bad.anchors = Tensor<double>::zeros({3, 5});
  CHECK_THROWS_WITH_AS(det::postprocess<double>({&bad, 1}, {{0}}, 20, 10), doctest::Contains("anchors must be [3, 4]"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(det::postprocess<double>({&level, 1}, {{0}}, 0, 10), doctest::Contains("must be positive"),
                       fiber::Error);
}
