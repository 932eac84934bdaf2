// Coarse -> fine initialisation against the OFFICIAL align_and_update_state_dicts
// (tests/reference/make_fine_keys.py runs it from tests/data/coarse/tiny_coarse.ckpt into the tiny
// fine model and records, from its log, the coarse key each fine key takes or skips for its
// shape); the official head initialisation rules; and the errors for a file that does not fit.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "fiber/io/open_checkpoint.hpp"
#include "fiber/models/fine_init.hpp"
#include "test_util.hpp"
#include "tiny_fine.hpp"

using namespace fiber;

namespace {

const io::Checkpoint& tiny_coarse() {
  static const io::Checkpoint c = io::open_checkpoint(std::string(FIBER_TEST_DATA_DIR) + "/coarse/tiny_coarse.ckpt");
  return c;
}

nlohmann::json official_matching(const std::string& version) {
  std::ifstream file(test::fine_fixture("coarse_to_fine_tiny.json"));
  REQUIRE(file);
  return nlohmann::json::parse(file)[version];
}

template <models::FiberFineConfig C>
void check_matching(const std::string& version) {
  auto model = std::make_unique<models::FiberFine<float, C>>();
  const auto official = official_matching(version);
  int loaded = 0, skipped = 0, none = 0;
  for (const auto& [key, from] : models::coarse_to_fine_matches(*model, tiny_coarse())) {
    CAPTURE(key);
    if (official["loaded"].contains(key)) {
      CHECK(from == official["loaded"][key].template get<std::string>());
      ++loaded;
    } else if (official["skipped"].contains(key)) {
      CHECK(from == official["skipped"][key].template get<std::string>());  // the tables of another window
      ++skipped;
    } else {
      CHECK(from.empty());
      ++none;
    }
  }
  MESSAGE(version, ": ", loaded, " parameters as the official loads them, ", skipped, " it skips for their shape, ",
          none, " with no coarse key");
  CHECK(skipped == 24);  // one relative-position table per Swin block
}
}  // namespace

TEST_CASE("coarse -> fine: the official suffix matching, v2 and v3") {
  check_matching<models::FiberTinyFine>("v2");
  check_matching<models::FiberTinyFineV3>("v3");
}

TEST_CASE("coarse -> fine: backbone copied, tables resized, FPN, head and stage norms initialised as the official") {
  auto model = std::make_unique<models::FiberFine<float, models::FiberTinyFine>>();
  const models::FineInitReport r = models::init_fine_from_coarse(*model, tiny_coarse(), 5);
  CHECK(r.adapted.size() == 24);
  CHECK(r.copied == std::int64_t(r.matches.size()));
  std::int64_t params = 0;
  model->visit("", [&](const std::string&, nn::Entry<float> e) { params += e.role == nn::Role::parameter; });
  CHECK(r.copied + std::int64_t(r.initialised.size()) == params);
  CHECK_FALSE(r.unused.empty());  // the coarse heads, poolers, queues, alpha_t2i of layers 0-5, ...

  // A copied weight is the coarse tensor; a resized table is the bicubic resize of the coarse one.
  auto param = [&](const std::string& key) -> Tensor<float> {
    for (const auto& [k, p] : nn::named_parameters<float>(*model))
      if (k == key) return p->value();
    FAIL("no parameter ", key);
    return {};
  };
  const std::string qkv = "fusion_backbone.backbone.body.layers.2.blocks.15.attn.qkv_i2t.weight";
  CHECK(test::relative_error(param(qkv), io::load_tensor<double>(tiny_coarse(), "vit_model.layers.2.blocks.15.attn.qkv_i2t.weight")) == 0);
  const std::string t2i = "fusion_backbone.language_backbone.body.model.encoder.layer.10.crossattention_t2i.self.key.weight";
  CHECK(test::relative_error(param(t2i), io::load_tensor<double>(tiny_coarse(), "text_transformer.encoder.layer.10.crossattention_t2i.self.key.weight")) == 0);
  const std::string table = "fusion_backbone.backbone.body.layers.0.blocks.1.attn.relative_position_bias_table";
  const Tensor<float> want = models::resize_relative_position_table(
      io::load_tensor<float>(tiny_coarse(), "vit_model.layers.0.blocks.1.attn.relative_position_bias_table"), 169);
  CHECK(test::relative_error(param(table), want.to<double>()) == 0);

  // The official constructors' values.
  const float prior = float(-std::log(0.99 / 0.01));
  CHECK(param("rpn.head.bias0").item() == doctest::Approx(prior));
  for (float v : param("rpn.head.cls_logits.bias").to_vector()) CHECK(v == doctest::Approx(prior));
  CHECK(param("rpn.head.log_scale").item() == 0.0f);
  for (float v : param("rpn.head.bias_lang").to_vector()) CHECK(v == 0.0f);
  for (float v : param("rpn.head.scales.3.scale").to_vector()) CHECK(v == 1.0f);
  for (float v : param("fusion_backbone.backbone.body.norm2.weight").to_vector()) CHECK(v == 1.0f);
  for (float v : param("rpn.head.dyhead_tower.0.DyConv.1.bn.weight").to_vector()) CHECK(v == 1.0f);
  auto max_abs = [](const Tensor<float>& t) {
    float m = 0;
    for (float v : t.to_vector()) m = std::max(m, std::abs(v));
    return m;
  };
  // FPN 3x3 over 16 channels: kaiming_uniform(a=1) bound sqrt(3 / 144); the deformable conv and the
  // offset conv: 1/sqrt(144); the tower's 1x1 attention conv, bbox_pred: N(0, 0.01).
  const float fpn_bound = std::sqrt(3.0f / 144), conv_bound = 1.0f / 12;
  CHECK(max_abs(param("fusion_backbone.backbone.fpn.fpn_layer2.weight")) <= fpn_bound);
  CHECK(max_abs(param("fusion_backbone.backbone.fpn.fpn_layer2.weight")) > 0.8f * fpn_bound);
  CHECK(max_abs(param("rpn.head.dyhead_tower.0.DyConv.0.conv.weight")) <= conv_bound);
  CHECK(max_abs(param("rpn.head.dyhead_tower.0.offset.bias")) <= conv_bound);
  CHECK(max_abs(param("rpn.head.dyhead_tower.0.offset.bias")) > 0);
  CHECK(max_abs(param("rpn.head.bbox_pred.weight")) < 0.06f);
  CHECK(max_abs(param("rpn.head.bbox_pred.bias")) == 0.0f);
  CHECK(max_abs(param("rpn.head.dyhead_tower.0.DyConv.0.conv.bias")) == 0.0f);

  // Deterministic from the seed.
  auto again = std::make_unique<models::FiberFine<float, models::FiberTinyFine>>();
  models::init_fine_from_coarse(*again, tiny_coarse(), 5);
  const auto a = nn::named_parameters<float>(*model), b = nn::named_parameters<float>(*again);
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].second->value().to_vector() == b[i].second->value().to_vector());
}

TEST_CASE("coarse -> fine: a file that is not a coarse FIBER of this size is one clear error") {
  // A file without the backbones (the DyHead fixture): every backbone parameter is listed missing.
  auto model = std::make_unique<models::FiberFine<float, models::FiberTinyFine>>();
  CHECK_THROWS_WITH_AS(models::init_fine_from_coarse(*model, io::open_checkpoint(test::fine_fixture("dyhead_weights.safetensors")), 0),
                       doctest::Contains("backbone parameters with no coarse key as their suffix"), Error);
  // Another Swin width: every Swin shape differs.
  constexpr models::FiberFineConfig wide = [] {
    models::FiberFineConfig c = models::FiberTinyFine;
    c.swin.embed_dim = 16;
    c.fpn.in_channels = {32, 64, 128};
    return c;
  }();
  auto other = std::make_unique<models::FiberFine<float, wide>>();
  CHECK_THROWS_WITH_AS(models::init_fine_from_coarse(*other, tiny_coarse(), 0), doctest::Contains("shapes that do not fit"), Error);
}
