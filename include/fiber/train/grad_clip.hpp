#pragma once
// Gradient scaling and norm clipping over a set of parameters, as
// torch.nn.utils.clip_grad_norm_(params, max_norm) (L2): the total norm is the L2 norm of all
// gradients together; when max_norm / (norm + 1e-6) < 1 every gradient is multiplied by it.
// Parameters without a gradient are left out of the norm and untouched.
//
// `pre_scale` folds gradient accumulation into the same pass: the trainer back-propagates N
// unscaled micro-batch losses, so the accumulated gradient is a sum; pre_scale = 1/N makes it
// the mean first (the norm returned and clipped is that of the mean gradient, as Lightning's,
// which scales each loss by 1/N before backward). One read pass for the norm, at most one write
// pass per gradient.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/error.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber::train {

namespace detail {
// Sum of squares of n floats, accumulated in double. Split by size, not by thread count, so the
// result does not depend on the number of threads (resume must be bit-exact on any machine).
inline double sum_of_squares(const float* g, std::int64_t n) {
  constexpr std::int64_t block = 1 << 14;
  const std::int64_t blocks = (n + block - 1) / block;
  std::vector<double> partial(std::size_t(blocks), 0.0);
  parallel_for(0, blocks, 1, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      double s = 0;
      const std::int64_t end = std::min(n, (b + 1) * block);
      for (std::int64_t i = b * block; i < end; ++i) s += double(g[i]) * double(g[i]);
      partial[std::size_t(b)] = s;
    }
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}
}  // namespace detail

// The L2 norm of all gradients of `params` (after multiplying them by pre_scale).
inline double grad_norm(const std::vector<Var<float>*>& params, double pre_scale = 1.0) {
  double total = 0;
  for (const Var<float>* p : params) {
    FIBER_CHECK(p && p->defined(), "grad_norm: an undefined parameter");
    const Tensor<float>& g = p->grad();
    if (!g.defined()) continue;
    const Tensor<float> c = g.contiguous();
    total += detail::sum_of_squares(c.data(), c.numel());
  }
  return std::abs(pre_scale) * std::sqrt(total);
}

// Multiplies every gradient by pre_scale, then clips the total norm to max_norm (0: no
// clipping). Returns the total norm before clipping (after pre_scale), as clip_grad_norm_ does.
// A non-finite norm is returned as it is and the gradients are then scaled by pre_scale only
// (torch would write NaN into them; the trainer reports it instead).
inline double scale_and_clip_grads(const std::vector<Var<float>*>& params, double max_norm, double pre_scale = 1.0) {
  FIBER_CHECK(max_norm >= 0, "clip_grad_norm: max_norm ", max_norm, " is negative");
  FIBER_CHECK(pre_scale > 0, "scale_and_clip_grads: pre_scale ", pre_scale, " must be positive");
  const double norm = grad_norm(params, pre_scale);
  double factor = pre_scale;
  if (max_norm > 0 && std::isfinite(norm)) {
    const double clip = max_norm / (norm + 1e-6);
    if (clip < 1.0) factor *= clip;
  }
  if (factor != 1.0) {
    const float f = float(factor);
    for (const Var<float>* p : params) {
      const Tensor<float>& g = p->grad();
      if (!g.defined()) continue;
      Tensor<float> scaled = Tensor<float>::empty(g.shape());
      scaled.assign(g * f);  // a new tensor: a gradient may share storage with another tensor
      p->set_grad(std::move(scaled));
    }
  }
  return norm;
}

// torch.nn.utils.clip_grad_norm_(params, max_norm): returns the total norm.
inline double clip_grad_norm(const std::vector<Var<float>*>& params, double max_norm) {
  FIBER_CHECK(max_norm > 0, "clip_grad_norm: max_norm ", max_norm, " must be positive");
  return scale_and_clip_grads(params, max_norm, 1.0);
}

}  // namespace fiber::train
