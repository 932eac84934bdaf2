// The whole fine-grained model: at the released size, its keys and shapes against the OFFICIAL
// GeneralizedVLRCNN's (tests/reference/make_fine_keys.py builds the official modules at FIBER-B's
// configuration and lists every state-dict entry), v2 and v3; the tiny model on a frame whose size
// is no multiple of 32; and the tiny model end to end against the official modules
// (make_fine_end_to_end.py).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <numeric>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "fiber/detection/postprocess.hpp"
#include "fiber/models/fiber_fine.hpp"
#include "fiber/models/fine_head_io.hpp"
#include "test_util.hpp"
#include "tiny_fine.hpp"

using namespace fiber;

namespace {
template <models::FiberFineConfig C>
void check_official_keys(const std::string& version) {
  std::ifstream file(test::fine_fixture("fiber_base_fine_keys.json"));
  REQUIRE(file);
  const auto official = nlohmann::json::parse(file)[version];
  auto model = std::make_unique<models::FiberFine<float, C>>();
  std::set<std::string> ours;
  int shapes = 0;
  model->visit("", [&](const std::string& key, nn::Entry<float> e) {
    CAPTURE(key);
    ours.insert(key);
    REQUIRE(official.contains(key));
    const auto& want = official[key];
    CHECK(want.contains("buffer") == (e.role == nn::Role::derived));
    if (e.var) {
      CHECK(e.var->shape() == Shape(want["shape"].get<std::vector<std::int64_t>>()));
      ++shapes;
    }
  });
  for (const auto& [key, _] : official.items()) {
    CAPTURE(key);
    CHECK(ours.count(key) == 1);
  }
  MESSAGE(version, ": ", ours.size(), " keys, ", shapes, " parameter shapes equal the official");
}
}  // namespace

TEST_CASE("FIBER-B fine-grained v2: every official key and shape, nothing else") {
  check_official_keys<models::FiberBaseFine>("v2");
}

TEST_CASE("FIBER-B fine-grained v3: every official key and shape, nothing else") {
  check_official_keys<models::FiberBaseFineV3>("v3");
}

TEST_CASE("tiny fine-grained model: a 70 x 100 frame through backbone, FPN and DyHead") {
  models::FiberFine<double, models::FiberTinyFine> m;  // double: this file's other forward passes are double
  // Weights that make every path non-trivial; the parts are checked against the official code in
  // test_fusion_backbone.cpp and test_dyhead_parity.cpp.
  Generator gen(11);
  for (auto& [key, p] : nn::named_parameters<double>(m)) p->value().copy_(Tensor<double>(randn<double>(p->shape(), gen) * 0.1));
  NoGrad no_grad;
  const auto ids = Tensor<std::int64_t>::from_data({1, 6}, {0, 11, 12, 13, 2, 1});
  const auto valid = Tensor<std::int64_t>::from_data({1, 6}, {1, 1, 1, 1, 1, 0});
  const auto text = m.text_prefix(ids, valid);
  const auto out = m(Var<double>(Tensor<double>::ones({1, 3, 70, 100})), text);
  CHECK(out.backbone.height == 96);
  CHECK(out.backbone.width == 128);
  REQUIRE(out.pyramid.size() == 5);
  const std::int64_t sides[5][2] = {{12, 16}, {6, 8}, {3, 4}, {2, 2}, {1, 1}};
  for (int l = 0; l < 5; ++l) {
    CAPTURE(l);
    CHECK(out.pyramid[std::size_t(l)].shape() == Shape{1, 16, sides[l][0], sides[l][1]});
    CHECK(out.head.token_logits[std::size_t(l)].shape() == Shape{1, sides[l][0] * sides[l][1], 6});
    CHECK(out.head.box_regression[std::size_t(l)].shape() == Shape{1, 4, sides[l][0], sides[l][1]});
  }
  // Finite everywhere, and the tokens' logits differ (the text reached the head).
  const Tensor<double> logits = out.head.token_logits[0].value().contiguous();
  bool differ = false;
  for (std::int64_t a = 0; a < logits.size(1); ++a) {
    for (int j = 0; j < 6; ++j) CHECK(std::isfinite(logits.data()[a * 6 + j]));
    differ = differ || logits.data()[a * 6 + 1] != logits.data()[a * 6 + 2];
  }
  CHECK(differ);
}

TEST_CASE("tiny fine-grained model end to end equals the official (backbone, FPN, DyHead, ATSSPostProcessor)") {
  // tests/reference/make_fine_end_to_end.py: the official FusionSwinTransformer with the FPN as its
  // backbone.fpn, VLDyHead and ATSSPostProcessor, float64. The backbone's weights are
  // fusion_v2_weights.safetensors, the FPN's and head's end_to_end_weights.safetensors.
  // Tolerances: levels and logits within 1e-10 of their largest value; detections as
  // test_head_loss_parity.cpp (labels exact, scores 1e-6, boxes 1e-5 px).
  auto model = std::make_unique<models::FiberFine<double, models::FiberTinyFine>>();
  nn::LoadOptions<double> o;
  o.strict = false;
  const nn::LoadReport backbone =
      nn::load_state_dict<double>(*model, io::open_checkpoint(test::fine_fixture("fusion_v2_weights.safetensors")), o);
  const nn::LoadReport head =
      nn::load_state_dict<double>(*model, io::open_checkpoint(test::fine_fixture("end_to_end_weights.safetensors")), o);
  CHECK(backbone.unexpected.empty());
  CHECK(head.unexpected.empty());
  CHECK(backbone.loaded + head.loaded == std::int64_t(nn::named_parameters<double>(*model).size()));

  const io::Checkpoint ins = io::open_checkpoint(test::fine_fixture("fusion_v2_io.safetensors"));
  const io::Checkpoint f = io::open_checkpoint(test::fine_fixture("end_to_end_io.safetensors"));
  NoGrad no_grad;
  const auto text = model->text_prefix(io::load_tensor<std::int64_t>(ins, "ids"), io::load_tensor<std::int64_t>(ins, "mask"));
  const models::FineOutputs<double> out = (*model)(Var<double>(io::load_tensor<double>(ins, "images")), text);
  for (int l = 0; l < 5; ++l) {
    CAPTURE(l);
    CHECK(test::relative_error(out.pyramid[std::size_t(l)].value(), io::load_tensor<double>(f, "p" + std::to_string(l + 3))) <= 1e-10);
    CHECK(test::relative_error(out.head.token_logits[std::size_t(l)].value(), io::load_tensor<double>(f, "logits" + std::to_string(l))) <= 1e-10);
  }
  const std::vector<Tensor<double>> anchors = models::level_anchors(out.head);
  const detection::PhraseTokens phrases{{1, 2}, {3}, {4, 5}};
  for (int n = 0; n < 2; ++n) {
    CAPTURE(n);
    const std::string i = std::to_string(n);
    const auto size = io::load_tensor<std::int64_t>(f, "image_size" + i).to_vector();
    detection::PostprocessOptions opt;
    opt.detections_per_image = 0;
    const auto got = detection::postprocess<double>(models::image_predictions(out.head, n, anchors), phrases, size[0], size[1], opt);
    const Tensor<double> boxes = io::load_tensor<double>(f, "det" + i + "_boxes"), scores = io::load_tensor<double>(f, "det" + i + "_scores");
    const auto labels = io::load_tensor<std::int64_t>(f, "det" + i + "_labels").to_vector();
    REQUIRE(got.size() == std::int64_t(labels.size()));
    std::vector<std::size_t> order(labels.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores.data()[a] > scores.data()[b]; });
    for (std::size_t k = 0; k < order.size(); ++k) {
      CAPTURE(k);
      CHECK(got.labels[k] == labels[order[k]]);
      CHECK(got.scores.data()[k] == doctest::Approx(scores.data()[order[k]]).epsilon(1e-6));
      for (int c = 0; c < 4; ++c) CHECK(std::abs(got.boxes.data()[4 * k + c] - boxes.data()[4 * order[k] + c]) <= 1e-5);
    }
    MESSAGE("image ", n, ": ", labels.size(), " detections equal the official");
  }
}
