#pragma once
// The official fine-grained training recipe (microsoft/FIBER fine_grained/maskrcnn_benchmark:
// solver/build.py make_optimizer and make_lr_scheduler, solver/lr_scheduler.py
// WarmupMultiStepLR, engine/trainer.py's weight-decay schedule, utils/ema.py ModelEma), with the
// SOLVER values of the pre-training config (configs/pretrain/mixed_nococo_flickr_objects365.yaml):
//
//   per parameter, by substring tests on its official name (in this order):
//     lr = base_lr; wd = weight_decay
//     "language_backbone" in name                        -> lr = lang_lr
//     "backbone.body" in name, "language_backbone.body" not -> lr = base_lr · backbone_body_lr_factor
//     "bias" in name                                     -> lr ·= bias_lr_factor; wd = weight_decay_bias
//     "norm" or "Norm" in name                           -> wd ·= weight_decay_norm_factor
//   optimiser: torch.optim.AdamW (betas 0.9, 0.999, eps 1e-8), the whole model's gradient norm
//     clipped to clip_grad_norm inside each step;
//   lr factor at iteration e: warmup (linear from warmup_factor over warmup_iters) ·
//     gamma^(milestones passed), milestones = round(step · max_iter) for steps < 1;
//   weight decay: multiplied by gamma once the iteration count reaches
//     weight_decay_schedule_ratio · the next milestone (one drop per iteration at most);
//   EMA of every parameter: ema = ema · decay + (1 − decay) · p after each step.
// As in make_param_groups, the substring tests are literal: "relative_position_bias_table",
// "bias_lang" and "bias0" contain "bias".
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/nn/module.hpp"
#include "fiber/train/adamw.hpp"
#include "fiber/train/param_groups.hpp"

namespace fiber::train {

struct FineSolverConfig {
  double base_lr = 1e-4;
  double lang_lr = 1e-5;
  double backbone_body_lr_factor = 1.0;
  double bias_lr_factor = 2.0;
  double weight_decay = 0.01;
  double weight_decay_bias = 0.0;
  double weight_decay_norm_factor = 1.0;
  std::vector<double> steps{0.67, 0.89};  // < 1: fractions of max_iter; otherwise iterations
  std::int64_t max_iter = 800000;
  double gamma = 0.1;
  std::int64_t warmup_iters = 2000;
  double warmup_factor = 0.001;
  bool warmup_linear = true;  // WARMUP_METHOD "linear"; false: "constant"
  bool weight_decay_schedule = true;
  double weight_decay_schedule_ratio = 0.667;
  double ema_decay = 0.999;     // MODEL_EMA; 0: no EMA
  double clip_grad_norm = 1.0;  // CLIP_GRADIENTS (full_model); 0: none

  AdamWOptions adamw() const { return {0.9, 0.999, 1e-8, AdamWVariant::torch}; }
};

struct ParamSetting {
  double lr = 0, weight_decay = 0;
  bool operator==(const ParamSetting&) const = default;
};

inline ParamSetting fine_param_setting(std::string_view name, const FineSolverConfig& cfg) {
  auto has = [&](std::string_view s) { return name.find(s) != std::string_view::npos; };
  ParamSetting s{cfg.base_lr, cfg.weight_decay};
  if (has("language_backbone")) s.lr = cfg.lang_lr;
  if (has("backbone.body") && !has("language_backbone.body")) s.lr = cfg.base_lr * cfg.backbone_body_lr_factor;
  if (has("bias")) {
    s.lr *= cfg.bias_lr_factor;
    s.weight_decay = cfg.weight_decay_bias;
  }
  if (has("norm") || has("Norm")) s.weight_decay *= cfg.weight_decay_norm_factor;
  return s;
}

// The parameters grouped by their (lr, weight decay), in order of first appearance. The official
// code makes one group per parameter; groups of equal settings update identically.
inline ParamGroups make_fine_param_groups(const std::vector<std::pair<std::string, Var<float>*>>& named,
                                          const FineSolverConfig& cfg) {
  ParamGroups out;
  std::map<std::pair<double, double>, std::size_t> index;
  for (const auto& [name, var] : named) {
    const ParamSetting s = fine_param_setting(name, cfg);
    auto [it, fresh] = index.emplace(std::pair{s.lr, s.weight_decay}, out.groups.size());
    if (fresh)
      out.groups.push_back({"lr " + std::to_string(s.lr) + ", weight decay " + std::to_string(s.weight_decay), s.lr,
                            s.weight_decay, {}});
    out.groups[it->second].params.push_back({name, var});
  }
  return out;
}

// make_lr_scheduler's milestones: round(step · max_iter) for steps below 1 (Python's round: half
// to even), the step itself otherwise. They must not decrease.
inline std::vector<std::int64_t> fine_milestones(const FineSolverConfig& cfg) {
  std::vector<std::int64_t> out;
  for (double step : cfg.steps) {
    FIBER_CHECK(step >= 0, "fine_milestones: step ", step, " is negative");
    out.push_back(step < 1 ? std::int64_t(std::nearbyint(step * double(cfg.max_iter))) : std::int64_t(step));
  }
  FIBER_CHECK(std::is_sorted(out.begin(), out.end()), "fine_milestones: the milestones must not decrease");
  return out;
}

// WarmupMultiStepLR: the lr factor at scheduler epoch e (the optimiser step e uses factor(e)).
struct WarmupMultiStepSchedule {
  std::vector<std::int64_t> milestones;
  double gamma = 0.1;
  std::int64_t warmup_iters = 500;
  double warmup_factor = 1.0 / 3;
  bool warmup_linear = true;

  static WarmupMultiStepSchedule from(const FineSolverConfig& cfg) {
    return {fine_milestones(cfg), cfg.gamma, cfg.warmup_iters, cfg.warmup_factor, cfg.warmup_linear};
  }

  double factor(std::int64_t e) const {
    double warm = 1;
    if (e < warmup_iters) {
      if (warmup_linear) {
        const double alpha = double(e) / double(warmup_iters);
        warm = warmup_factor * (1 - alpha) + alpha;
      } else {
        warm = warmup_factor;
      }
    }
    const auto passed = std::upper_bound(milestones.begin(), milestones.end(), e) - milestones.begin();
    return warm * std::pow(gamma, double(passed));
  }
};

// engine/trainer.py's weight-decay schedule. Construct at the scheduler epoch training starts
// from (0, or the resumed iteration); after each scheduler step call drop(e): it says whether to
// multiply the weight decay by gamma now.
class WeightDecaySchedule {
 public:
  WeightDecaySchedule(std::vector<std::int64_t> milestones, double ratio, std::int64_t start_epoch)
      : milestones_(std::move(milestones)), ratio_(ratio) {
    for (std::size_t i = 0; i < milestones_.size(); ++i)
      if (double(start_epoch) >= double(milestones_[i]) * ratio_) target_ = i + 1;
  }
  bool drop(std::int64_t e) {
    if (target_ >= milestones_.size() || double(e) < double(milestones_[target_]) * ratio_) return false;
    ++target_;
    return true;
  }
  std::size_t drops_done() const { return target_; }

 private:
  std::vector<std::int64_t> milestones_;
  double ratio_;
  std::size_t target_ = 0;
};

// utils/ema.py ModelEma: a copy of every parameter, moved towards the model after each step.
template <class T>
class ModelEma {
 public:
  ModelEma() = default;
  template <class M>
  ModelEma(M& model, double decay) : decay_(decay) {
    FIBER_CHECK(decay >= 0 && decay <= 1, "ModelEma: decay ", decay, " is not in [0, 1]");
    for (auto& [name, var] : nn::named_parameters<T>(model)) {
      names_.push_back(name);
      values_.push_back(var->value().clone());
    }
  }

  // ema = ema · decay + (1 − decay) · p, in that order of operations (the official copy_).
  template <class M>
  void update(M& model) {
    std::size_t i = 0;
    const T d = T(decay_), a = T(1.0 - decay_);
    for (auto& [name, var] : nn::named_parameters<T>(model)) {
      FIBER_CHECK(i < names_.size() && names_[i] == name, "ModelEma: the model's parameter '", name,
                  "' is not the one the EMA was made from");
      const Tensor<T> p = var->value().contiguous();
      T* e = values_[i].data();
      const T* pv = p.data();
      for (std::int64_t k = 0; k < p.numel(); ++k) e[k] = e[k] * d + a * pv[k];
      ++i;
    }
    FIBER_CHECK(i == names_.size(), "ModelEma: the model has ", i, " parameters, the EMA ", names_.size());
  }

  const std::vector<std::string>& names() const { return names_; }
  const std::vector<Tensor<T>>& values() const { return values_; }
  // Replaces the values (a resumed run's), one per name, same shapes.
  void set_values(std::vector<Tensor<T>> values) {
    FIBER_CHECK(values.size() == values_.size(), "ModelEma: ", values.size(), " values for ", values_.size(), " parameters");
    for (std::size_t i = 0; i < values.size(); ++i)
      FIBER_CHECK(values[i].shape() == values_[i].shape(), "ModelEma: value of '", names_[i], "' has shape ", values[i].shape(),
                  ", expected ", values_[i].shape());
    values_ = std::move(values);
  }
  double decay() const { return decay_; }

 private:
  double decay_ = 0;
  std::vector<std::string> names_;
  std::vector<Tensor<T>> values_;
};

}  // namespace fiber::train
