// The fine-grained training recipe against the OFFICIAL one (tests/reference/make_fine_recipe.py
// runs make_optimizer, make_lr_scheduler, WarmupMultiStepLR, torch.optim.AdamW, ModelEma and the
// trainer's weight-decay schedule for 12 iterations on parameters named like the real model):
// each parameter's lr and weight decay at every step (the substring rules, warmup, milestones,
// the weight-decay drops), the parameters after 12 steps (AdamW in torch's form, the whole
// model's gradients clipped to norm 1) and the EMA.
// Tolerances: lr and weight decay to 1e-12 relative (double arithmetic, pow vs repeated
// products); parameters and EMA within 2e-6 of their scale (float32 over 12 steps).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/train/fine_recipe.hpp"
#include "fiber/train/grad_clip.hpp"

using namespace fiber;

namespace {
const io::Checkpoint& fixture() {
  static const io::Checkpoint c = io::open_checkpoint(std::string(FIBER_TEST_DATA_DIR) + "/train/fine_recipe.safetensors");
  return c;
}

// The fixture's parameters under their official names, in the official named_parameters order.
struct Toy {
  std::vector<std::string> names{
      "fusion_backbone.backbone.body.layers.0.blocks.0.attn.relative_position_bias_table",
      "fusion_backbone.backbone.body.layers.0.blocks.0.attn.qkv.weight",
      "fusion_backbone.backbone.body.norm1.weight",
      "fusion_backbone.backbone.fpn.fpn_inner2.bias",
      "fusion_backbone.language_backbone.body.model.encoder.layer.0.attention.output.LayerNorm.weight",
      "fusion_backbone.language_backbone.body.model.encoder.layer.0.attention.self.query.bias",
      "rpn.head.bias_lang",
      "rpn.head.bias0",
      "rpn.head.log_scale",
      "rpn.head.dyhead_tower.0.DyConv.0.conv.weight"};
  std::vector<Var<float>> vars;
  Toy() {
    for (const std::string& n : names) vars.push_back(Var<float>::parameter(io::load_tensor<float>(fixture(), "init." + n)));
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    for (std::size_t i = 0; i < names.size(); ++i) nn::visit_parameter(f, prefix, names[i], vars[i]);
  }
};

double scaled_diff(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.shape() == b.shape());
  const auto av = a.contiguous().to_vector(), bv = b.contiguous().to_vector();
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < av.size(); ++i) {
    scale = std::max(scale, double(std::abs(bv[i])));
    worst = std::max(worst, double(std::abs(av[i] - bv[i])));
  }
  return worst / std::max(scale, 1e-30);
}
}  // namespace

TEST_CASE("fine-grained recipe: lr, weight decay, AdamW (torch), clipping and EMA equal the official 12 steps") {
  train::FineSolverConfig cfg;
  cfg.base_lr = 0.05;
  cfg.lang_lr = 0.01;
  cfg.backbone_body_lr_factor = 0.5;
  cfg.weight_decay = 0.5;
  cfg.weight_decay_bias = 0.1;
  cfg.weight_decay_norm_factor = 0.5;
  cfg.steps = {0.5, 0.75};
  cfg.max_iter = 12;
  cfg.warmup_iters = 4;
  cfg.warmup_factor = 0.001;
  cfg.ema_decay = 0.9;
  cfg.clip_grad_norm = 1.0;

  Toy toy;
  const auto named = nn::named_parameters<float>(toy);
  train::AdamW opt(train::make_fine_param_groups(named, cfg), cfg.adamw());
  const auto sched = train::WarmupMultiStepSchedule::from(cfg);
  CHECK(sched.milestones == std::vector<std::int64_t>{6, 9});
  train::WeightDecaySchedule wd_schedule(sched.milestones, cfg.weight_decay_schedule_ratio, 0);
  train::ModelEma<float> ema(toy, cfg.ema_decay);
  // Which group each parameter landed in.
  std::vector<std::size_t> group_of(toy.names.size());
  for (std::size_t g = 0; g < opt.param_groups().groups.size(); ++g)
    for (const auto& p : opt.param_groups().groups[g].params)
      for (std::size_t i = 0; i < toy.names.size(); ++i)
        if (toy.names[i] == p.name) group_of[i] = g;

  const Tensor<double> want_lr = io::load_tensor<double>(fixture(), "lr"), want_wd = io::load_tensor<double>(fixture(), "wd");
  std::vector<Var<float>*> params;
  for (Var<float>& v : toy.vars) params.push_back(&v);
  opt.set_lr_factor(sched.factor(0));
  for (std::int64_t it = 0; it < cfg.max_iter; ++it) {
    CAPTURE(it);
    for (std::size_t i = 0; i < toy.names.size(); ++i) {
      CAPTURE(toy.names[i]);
      toy.vars[i].set_grad(io::load_tensor<float>(fixture(), "grad." + std::to_string(it) + "." + toy.names[i]));
      const double lr = want_lr.data()[it * 10 + std::int64_t(i)], wd = want_wd.data()[it * 10 + std::int64_t(i)];
      CHECK(opt.lr(group_of[i]) == doctest::Approx(lr).epsilon(1e-12));
      CHECK(opt.weight_decay(group_of[i]) == doctest::Approx(wd).epsilon(1e-12));
    }
    train::clip_grad_norm(params, cfg.clip_grad_norm);
    opt.step();
    opt.set_lr_factor(sched.factor(it + 1));
    if (wd_schedule.drop(it + 1)) opt.scale_weight_decay(cfg.gamma);
    ema.update(toy);
  }
  CHECK(wd_schedule.drops_done() == 2);
  for (std::size_t i = 0; i < toy.names.size(); ++i) {
    CAPTURE(toy.names[i]);
    CHECK(scaled_diff(toy.vars[i].value(), io::load_tensor<float>(fixture(), "final." + toy.names[i])) <= 2e-6);
    CHECK(scaled_diff(ema.values()[i], io::load_tensor<float>(fixture(), "ema." + toy.names[i])) <= 2e-6);
  }
}

TEST_CASE("fine-grained parameter rules by name (the official substring tests)") {
  const train::FineSolverConfig cfg;  // the pre-training config: 1e-4, language 1e-5, wd 0.01
  using S = train::ParamSetting;
  CHECK(train::fine_param_setting("rpn.head.dyhead_tower.0.offset.weight", cfg) == S{1e-4, 0.01});
  CHECK(train::fine_param_setting("rpn.head.dyhead_tower.0.offset.bias", cfg) == S{2e-4, 0.0});
  CHECK(train::fine_param_setting("fusion_backbone.language_backbone.body.model.encoder.layer.3.output.dense.weight",
                                  cfg) == S{1e-5, 0.01});
  CHECK(train::fine_param_setting("fusion_backbone.language_backbone.body.model.encoder.layer.3.output.dense.bias",
                                  cfg) == S{2e-5, 0.0});
  CHECK(train::fine_param_setting("fusion_backbone.backbone.body.layers.2.blocks.3.attn.relative_position_bias_table",
                                  cfg) == S{2e-4, 0.0});  // "bias" inside the name
  CHECK(train::fine_param_setting("rpn.head.bias0", cfg) == S{2e-4, 0.0});
}

TEST_CASE("warmup multi-step schedule and weight-decay drops by hand") {
  train::FineSolverConfig cfg;
  cfg.max_iter = 1000;
  cfg.steps = {0.5, 0.8, 900};  // fractions and an absolute step
  const auto s = train::WarmupMultiStepSchedule::from(cfg);
  CHECK(s.milestones == std::vector<std::int64_t>{500, 800, 900});
  CHECK(s.factor(0) == doctest::Approx(0.001));
  // At 1000 the three milestones have passed (0.1³) and the 2000-iteration warmup is half done.
  CHECK(s.factor(1000) == doctest::Approx((0.001 * 0.5 + 0.5) * 1e-3));
  cfg.warmup_iters = 10;
  const auto t = train::WarmupMultiStepSchedule::from(cfg);
  CHECK(t.factor(5) == doctest::Approx(0.001 * 0.5 + 0.5));
  CHECK(t.factor(499) == 1.0);
  CHECK(t.factor(500) == doctest::Approx(0.1));
  CHECK(t.factor(900) == doctest::Approx(1e-3));
  train::WeightDecaySchedule wd({500, 800}, 0.667, 400);  // resumed at 400: 0.667 · 500 = 333.5 is behind it
  CHECK(wd.drops_done() == 1);
  CHECK_FALSE(wd.drop(533));
  CHECK(wd.drop(534));  // 0.667 · 800 = 533.6
  CHECK_FALSE(wd.drop(535));
  cfg.steps = {0.9, 0.5};
  CHECK_THROWS_WITH_AS(train::fine_milestones(cfg), doctest::Contains("must not decrease"), Error);
}
