// The official substring rules of set_schedule, on official FIBER names.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "fiber/train/param_groups.hpp"

using fiber::Tensor;
using fiber::Var;
namespace train = fiber::train;

TEST_CASE("each official name falls in the group the substring rules give") {
  CHECK(train::official_group_index("text_transformer.encoder.layer.0.attention.self.query.weight") == 0);
  CHECK(train::official_group_index("text_transformer.encoder.layer.0.attention.self.query.bias") == 1);
  CHECK(train::official_group_index("text_transformer.embeddings.LayerNorm.weight") == 1);
  CHECK(train::official_group_index("vit_model.layers.0.blocks.0.attn.relative_position_bias_table") == 1);
  CHECK(train::official_group_index("vit_model.layers.0.blocks.0.norm2.weight") == 1);
  CHECK(train::official_group_index("vit_model.norm.weight") == 1);
  CHECK(train::official_group_index("vit_model.layers.0.blocks.0.mlp.fc1.weight") == 0);
  CHECK(train::official_group_index("itm_score.fc.weight") == 2);
  CHECK(train::official_group_index("mlm_score.bias") == 3);
  CHECK(train::official_group_index("mlm_score.transform.LayerNorm.weight") == 3);
  CHECK(train::official_group_index("cross_modal_image_transform.weight") == 4);
  CHECK(train::official_group_index("text_transformer.encoder.layer.9.crossattention_i2t.self.key.weight") == 4);
  CHECK(train::official_group_index("vit_model.layers.2.blocks.1.attn_t2i.norm.weight") == 5);
  CHECK(train::official_group_index("cross_modal_text_pooler.dense.bias") == 5);
  // head and cross-modal at once: no group, as the official code (the name is never trained)
  CHECK(train::official_group_index("cross_modal_itm_score.weight") == -1);
  CHECK(train::official_group_index("t2i_mlm_score.bias") == -1);
}

TEST_CASE("make_param_groups: six groups with the official lr and decay, exclusions listed") {
  Var<float> a = Var<float>::parameter(Tensor<float>::zeros({2})), b = a, c = a, d = a, e = a;
  std::vector<std::pair<std::string, Var<float>*>> named = {{"encoder.dense.weight", &a},
                                                            {"encoder.dense.bias", &b},
                                                            {"itm_score.fc.weight", &c},
                                                            {"cross_modal_text_pooler.dense.weight", &d},
                                                            {"i2t_itm_score.weight", &e}};
  const train::ParamGroups g = train::make_param_groups(named, {2e-4, 0.05, 10, 3});
  REQUIRE(g.groups.size() == 6);
  CHECK(g.groups[0].lr == 2e-4);
  CHECK(g.groups[0].weight_decay == 0.05);
  CHECK(g.groups[1].weight_decay == 0.0);
  CHECK(g.groups[2].lr == doctest::Approx(2e-3));
  CHECK(g.groups[3].weight_decay == 0.0);
  CHECK(g.groups[4].lr == doctest::Approx(6e-4));
  CHECK(g.groups[5].weight_decay == 0.0);
  REQUIRE(g.groups[0].params.size() == 1);
  CHECK(g.groups[0].params[0].name == "encoder.dense.weight");
  CHECK(g.groups[1].params[0].name == "encoder.dense.bias");
  CHECK(g.groups[2].params[0].name == "itm_score.fc.weight");
  CHECK(g.groups[4].params[0].name == "cross_modal_text_pooler.dense.weight");
  CHECK(g.excluded == std::vector<std::string>{"i2t_itm_score.weight"});
  CHECK(train::excluded_parameter_names(named) == g.excluded);
}

TEST_CASE("make_param_groups refuses duplicate names and undefined parameters") {
  Var<float> a = Var<float>::parameter(Tensor<float>::zeros({2})), undefined;
  CHECK_THROWS_WITH_AS(train::make_param_groups({{"w", &a}, {"w", &a}}), doctest::Contains("occurs twice"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(train::make_param_groups({{"w", &undefined}}), doctest::Contains("undefined"), fiber::Error);
  CHECK_THROWS_AS(train::make_param_groups({{"w", &a}}, {-1.0}), fiber::Error);
}
