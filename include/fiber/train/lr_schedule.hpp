#pragma once
// The learning-rate schedule of the official coarse recipe: transformers'
// get_polynomial_decay_schedule_with_warmup (src/transformers/optimization.py,
// _get_polynomial_decay_schedule_with_warmup_lr_lambda) with power = decay_power = 1 and
// lr_end = end_lr = 0 (coarse_grained/fiber/config.py), i.e. linear warmup then linear decay.
// As a LambdaLR factor of each group's initial lr, for scheduler position `step`:
//
//   step < warmup            step / max(1, warmup)
//   step > total             lr_end / lr_init
//   otherwise                ((lr_init - lr_end) * (1 - (step - warmup) / (total - warmup))^power + lr_end) / lr_init
//
// LambdaLR applies factor(0) at construction and Lightning steps it after every optimiser step
// ("interval": "step"), so update k (0-based) runs with factor(k): with warmup > 0 the very first
// update has lr 0. warmup = int(total * fraction) when the configuration gives a float
// (warmup_steps = 0.1), as set_schedule does.
#include <cmath>
#include <cstdint>

#include "fiber/core/error.hpp"

namespace fiber::train {

struct PolynomialDecaySchedule {
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;
  double lr_init = 1e-4;  // the optimiser's default lr (AdamW(lr=lr)); only the ratio lr_end / lr_init matters
  double lr_end = 0.0;
  double power = 1.0;

  // The factor multiplying each group's initial lr at scheduler position `step`.
  double factor(std::int64_t step) const {
    FIBER_CHECK(total_steps > warmup_steps || step < warmup_steps, "PolynomialDecaySchedule: total_steps ",
                total_steps, " must exceed warmup_steps ", warmup_steps);
    if (step < warmup_steps) return double(step) / double(warmup_steps > 1 ? warmup_steps : 1);
    if (step > total_steps) return lr_end / lr_init;
    const double lr_range = lr_init - lr_end;
    const double decay_steps = double(total_steps - warmup_steps);
    const double pct_remaining = 1.0 - double(step - warmup_steps) / decay_steps;
    return (lr_range * std::pow(pct_remaining, power) + lr_end) / lr_init;
  }
};

// int(total * fraction), as Python truncates a positive float.
inline std::int64_t warmup_from_fraction(std::int64_t total_steps, double fraction) {
  FIBER_CHECK(fraction >= 0 && fraction <= 1, "warmup fraction ", fraction, " is not in [0, 1]");
  return std::int64_t(double(total_steps) * fraction);
}

// The official schedule: warmup as a fraction of the run, linear decay to 0.
inline PolynomialDecaySchedule linear_warmup_decay(std::int64_t total_steps, double warmup_fraction,
                                                   double lr_init = 1e-4) {
  FIBER_CHECK(total_steps >= 1, "linear_warmup_decay: total_steps ", total_steps, " must be at least 1");
  FIBER_CHECK(lr_init > 0, "linear_warmup_decay: lr ", lr_init, " must be positive (transformers requires lr_init > lr_end)");
  PolynomialDecaySchedule s;
  s.total_steps = total_steps;
  s.warmup_steps = warmup_from_fraction(total_steps, warmup_fraction);
  FIBER_CHECK(s.warmup_steps < total_steps, "linear_warmup_decay: warmup of ", s.warmup_steps,
              " steps leaves no decay in a run of ", total_steps);
  s.lr_init = lr_init;
  return s;
}

}  // namespace fiber::train
