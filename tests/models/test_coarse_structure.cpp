// The coarse model's module tree: official keys and shapes, parameter count, tied rank_output.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "fiber/models/fiber_coarse.hpp"

using namespace fiber;
using Tiny = models::FiberCoarse<float, models::FiberTinyCoarse>;

namespace {
std::map<std::string, Shape> keys_of(Tiny& m) {
  std::map<std::string, Shape> out;
  m.visit("", [&](const std::string& key, nn::Entry<float> e) {
    CHECK_MESSAGE(out.count(key) == 0, "key visited twice: " << key);
    out[key] = e.var ? e.var->shape() : Shape{};
  });
  return out;
}
}  // namespace

TEST_CASE("tiny coarse model: official keys and shapes") {
  Tiny m;
  const auto keys = keys_of(m);
  CHECK(keys.at("temp") == Shape{});
  CHECK(keys.at("vit_model.patch_embed.proj.weight") == Shape{8, 3, 4, 4});
  CHECK(keys.at("vit_model.layers.0.blocks.0.attn.relative_position_bias_table") == Shape{49, 1});
  CHECK(keys.count("vit_model.layers.0.blocks.1.attn_mask") == 1);   // shifted: mask buffer
  CHECK(keys.count("vit_model.layers.3.blocks.1.attn_mask") == 0);   // stage 4 = one window: no shift
  CHECK(keys.at("vit_model.layers.0.downsample.reduction.weight") == Shape{16, 32});
  CHECK(keys.count("vit_model.layers.2.blocks.13.attn.qkv_i2t.weight") == 0);
  CHECK(keys.at("vit_model.layers.2.blocks.14.attn.qkv_text_i2t.weight") == Shape{64, 16});
  CHECK(keys.at("vit_model.layers.2.blocks.14.attn.qkv_i2t.weight") == Shape{32, 32});
  CHECK(keys.at("vit_model.layers.2.blocks.14.attn.alpha_i2t") == Shape{1});
  CHECK(keys.at("vit_model.layers.3.blocks.1.attn.qkv_text_i2t.weight") == Shape{128, 16});
  CHECK(keys.count("vit_model.layers.3.downsample.reduction.weight") == 0);
  CHECK(keys.at("vit_model.norm.weight") == Shape{64});
  CHECK(keys.at("text_transformer.embeddings.position_embeddings.weight") == Shape{42, 16});
  CHECK(keys.at("text_transformer.encoder.layer.0.alpha_t2i") == Shape{1});
  CHECK(keys.count("text_transformer.encoder.layer.5.crossattention_t2i.self.key.weight") == 0);
  CHECK(keys.at("text_transformer.encoder.layer.6.crossattention_t2i.self.key.weight") == Shape{16, 32});
  CHECK(keys.at("text_transformer.encoder.layer.10.crossattention_t2i.self.value.weight") == Shape{16, 64});
  CHECK(keys.at("text_transformer.encoder.layer.11.crossattention_t2i.output.LayerNorm.weight") == Shape{16});
  CHECK(keys.at("cross_modal_image_transform.weight") == Shape{16, 64});
  CHECK(keys.at("itm_score.fc.weight") == Shape{2, 32});
  CHECK(keys.at("rank_output.weight") == Shape{1, 32});
  CHECK(keys.at("mlm_score.decoder.weight") == Shape{1000, 16});
  CHECK(keys.count("mlm_score.decoder.bias") == 0);
}

TEST_CASE("tiny coarse model: rank_output shares storage with the ITM match row") {
  Tiny m;
  m.itm_score.weight.value().fill_(0.f);
  m.itm_score.weight.value().narrow(0, 1, 1).fill_(2.f);
  CHECK(m.rank_output_weight.value().data()[0] == 2.f);
  // Optimisers see parameters only: the tied view is not one of them.
  bool listed = false;
  for (auto& [key, v] : nn::named_parameters<float>(m)) listed = listed || key == "rank_output.weight";
  CHECK_FALSE(listed);
}
