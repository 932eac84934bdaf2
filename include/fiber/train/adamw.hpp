#pragma once
// AdamW as the official coarse recipe runs it: transformers.optimization.AdamW with
// correct_bias=True, betas (0.9, 0.98), eps 1e-8 (microsoft/FIBER fiber_utils.py set_schedule).
// Per parameter p with gradient g, at its own step count t (1 on its first update):
//
//   m = b1 * m + (1 - b1) * g
//   v = b2 * v + (1 - b2) * g * g
//   step_size = lr * sqrt(1 - b2^t) / (1 - b1^t)
//   p = p - step_size * m / (sqrt(v) + eps)
//   p = p - lr * wd * p            (only when wd > 0: decoupled decay, AFTER the Adam update,
//                                   on the updated p, with the group's current lr)
//
// Note eps is added to sqrt(v) before bias correction (HF's form, not torch.optim.AdamW's).
//
// AdamWVariant::torch is torch.optim.AdamW (the official fine-grained recipe,
// maskrcnn_benchmark/solver/build.py): the decay comes FIRST, on the old p, and eps is added
// after the bias correction of v:
//   p = p - lr * wd * p
//   m = m + (1 - b1) * (g - m)
//   p = p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// A parameter whose gradient is undefined is skipped entirely: its m, v and t do not move, as
// HF skips p.grad is None. The update of one parameter is one fused pass over p, g, m, v
// (a plain loop the compiler vectorises, split over the thread pool), not a chain of tensor ops.
// Scalars follow the reference's precision: constants computed in double, applied in float.
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/train/param_groups.hpp"

namespace fiber::train {

enum class AdamWVariant {
  huggingface,  // transformers.optimization.AdamW (the coarse recipe)
  torch,        // torch.optim.AdamW (the fine-grained recipe)
};

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-8;
  AdamWVariant variant = AdamWVariant::huggingface;
};

// The optimiser state of one parameter (HF's state["exp_avg"], ["exp_avg_sq"], ["step"]).
struct AdamWState {
  Tensor<float> exp_avg;     // m, shape of the parameter; undefined before its first update
  Tensor<float> exp_avg_sq;  // v
  std::int64_t step = 0;     // t: updates this parameter has had
};

// The constants of one parameter's update, in the precision the reference applies them.
struct AdamWStepConstants {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
  float neg_step_size;  // huggingface: -lr * sqrt(1 - b2^t) / (1 - b1^t); torch: -lr / (1 - b1^t)
  float neg_decay;      // -lr * wd (0: no decay pass)
  float sqrt_bias2 = 1;  // torch: sqrt(1 - b2^t)
  float keep = 1;        // torch: 1 - lr * wd, rounded once (param.mul_(1 - lr * wd))
};

// torch.optim.AdamW's single-tensor update (its CPU path): decay first; m by lerp (m + (1 − b1)(g − m),
// torch's form for weights below ½); eps after v's bias correction.
inline void adamw_update_torch(float* p, const float* g, float* m, float* v, std::int64_t n,
                               const AdamWStepConstants& c) {
  parallel_for(0, n, 1 << 15, [&](std::int64_t i0, std::int64_t i1) {
    const float a1 = c.one_minus_beta1, b2 = c.beta2, a2 = c.one_minus_beta2, eps = c.eps;
    const float ss = c.neg_step_size, keep = c.keep, sb2 = c.sqrt_bias2;
    for (std::int64_t i = i0; i < i1; ++i) {
      const float gi = g[i];
      const float mi = m[i] + a1 * (gi - m[i]);
      const float vi = b2 * v[i] + a2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * keep + ss * mi / (std::sqrt(vi) / sb2 + eps);  // addcdiv: value · m / denom
    }
  });
}

// p, g, m, v: n contiguous floats each. One pass: every element is read and written once.
inline void adamw_update(float* p, const float* g, float* m, float* v, std::int64_t n, const AdamWStepConstants& c) {
  parallel_for(0, n, 1 << 15, [&](std::int64_t i0, std::int64_t i1) {
    const float b1 = c.beta1, a1 = c.one_minus_beta1, b2 = c.beta2, a2 = c.one_minus_beta2, eps = c.eps;
    const float ss = c.neg_step_size, wd = c.neg_decay;
    if (wd != 0.0f) {
      for (std::int64_t i = i0; i < i1; ++i) {
        const float gi = g[i];
        const float mi = b1 * m[i] + a1 * gi;
        const float vi = b2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float pi = p[i] + ss * (mi / (std::sqrt(vi) + eps));
        p[i] = pi + wd * pi;
      }
    } else {
      for (std::int64_t i = i0; i < i1; ++i) {
        const float gi = g[i];
        const float mi = b1 * m[i] + a1 * gi;
        const float vi = b2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] + ss * (mi / (std::sqrt(vi) + eps));
      }
    }
  });
}

class AdamW {
 public:
  explicit AdamW(ParamGroups groups, AdamWOptions options = {}) : groups_(std::move(groups)), options_(options) {
    FIBER_CHECK(options_.beta1 >= 0 && options_.beta1 < 1, "AdamW: beta1 ", options_.beta1, " is not in [0, 1)");
    FIBER_CHECK(options_.beta2 >= 0 && options_.beta2 < 1, "AdamW: beta2 ", options_.beta2, " is not in [0, 1)");
    FIBER_CHECK(options_.eps >= 0, "AdamW: eps ", options_.eps, " is negative");
    for (const ParamGroup& g : groups_.groups) {
      lr_.push_back(g.lr);
      weight_decay_.push_back(g.weight_decay);
      for (const NamedParam& p : g.params) {
        FIBER_CHECK(p.var && p.var->defined(), "AdamW: parameter '", p.name, "' is undefined");
        FIBER_CHECK(p.var->value().is_contiguous(), "AdamW: parameter '", p.name,
                    "' is a non-contiguous view; the optimiser updates parameters in place and needs them contiguous");
        FIBER_CHECK(state_.emplace(p.name, AdamWState{}).second, "AdamW: parameter '", p.name, "' is in two groups");
      }
    }
  }

  const ParamGroups& param_groups() const { return groups_; }
  const AdamWOptions& options() const { return options_; }

  // The schedule's factor: each group's lr becomes its initial lr times `factor` (LambdaLR).
  void set_lr_factor(double factor) {
    for (std::size_t i = 0; i < lr_.size(); ++i) lr_[i] = groups_.groups[i].lr * factor;
  }
  // The current lr of group i (after set_lr_factor).
  double lr(std::size_t group) const { return lr_.at(group); }

  // Multiplies every group's current weight decay by `factor` (the fine-grained recipe's weight
  // decay schedule: param_group["weight_decay"] *= gamma).
  void scale_weight_decay(double factor) {
    for (double& wd : weight_decay_) wd *= factor;
  }
  double weight_decay(std::size_t group) const { return weight_decay_.at(group); }
  // Every group's weight decay back to its initial value (before a resume replays the drops).
  void reset_weight_decay() {
    for (std::size_t i = 0; i < weight_decay_.size(); ++i) weight_decay_[i] = groups_.groups[i].weight_decay;
  }

  // One update of every grouped parameter that has a gradient.
  void step() {
    for (std::size_t gi = 0; gi < groups_.groups.size(); ++gi) {
      const ParamGroup& group = groups_.groups[gi];
      for (const NamedParam& p : group.params) update(p, lr_[gi], weight_decay_[gi]);
    }
  }

  // Drops every grouped parameter's gradient (the next backward starts from zero).
  void zero_grad() {
    for (const ParamGroup& group : groups_.groups)
      for (const NamedParam& p : group.params) p.var->zero_grad();
  }

  // The state of the parameter `name` (fiber::Error if no group holds it).
  AdamWState& state(const std::string& name) {
    auto it = state_.find(name);
    FIBER_CHECK(it != state_.end(), "AdamW: no parameter named '", name, "' in the optimiser");
    return it->second;
  }
  const AdamWState& state(const std::string& name) const { return const_cast<AdamW*>(this)->state(name); }

 private:
  void update(const NamedParam& p, double lr, double weight_decay) {
    const Tensor<float>& grad = p.var->grad();
    if (!grad.defined()) return;  // HF: `if p.grad is None: continue`
    const Tensor<float>& value = p.var->value();
    FIBER_CHECK(grad.shape() == value.shape(), "AdamW: gradient of '", p.name, "' has shape ", grad.shape(),
                ", the parameter ", value.shape());
    FIBER_CHECK(value.is_contiguous(), "AdamW: parameter '", p.name, "' became non-contiguous");
    AdamWState& s = state_.at(p.name);
    if (!s.exp_avg.defined()) {
      s.exp_avg = Tensor<float>::zeros(value.shape());
      s.exp_avg_sq = Tensor<float>::zeros(value.shape());
    }
    ++s.step;
    const double b1 = options_.beta1, b2 = options_.beta2;
    const double bias1 = 1.0 - std::pow(b1, double(s.step)), bias2 = 1.0 - std::pow(b2, double(s.step));
    const bool torch = options_.variant == AdamWVariant::torch;
    const AdamWStepConstants c{float(b1),
                               float(1.0 - b1),
                               float(b2),
                               float(1.0 - b2),
                               float(options_.eps),
                               float(torch ? -(lr / bias1) : -(lr * std::sqrt(bias2) / bias1)),
                               weight_decay > 0 ? float(-lr * weight_decay) : 0.0f,
                               float(std::sqrt(bias2)),
                               float(1.0 - lr * weight_decay)};
    const Tensor<float> g = grad.contiguous();
    if (torch)
      adamw_update_torch(value.data(), g.data(), s.exp_avg.data(), s.exp_avg_sq.data(), value.numel(), c);
    else
      adamw_update(value.data(), g.data(), s.exp_avg.data(), s.exp_avg_sq.data(), value.numel(), c);
    value.bump_version();  // the parameter changed in place: a graph that saved it must not reuse it
  }

  ParamGroups groups_;
  AdamWOptions options_;
  std::vector<double> lr_;            // current lr per group
  std::vector<double> weight_decay_;  // current weight decay per group
  std::unordered_map<std::string, AdamWState> state_;
};

}  // namespace fiber::train
