#pragma once
// The model's residual connections with stochastic depth, and the cyclic shift of Swin's
// shifted windows.
#include <cstdint>

#include "fiber/autograd/var.hpp"
#include "fiber/core/error.hpp"
#include "fiber/nn/context.hpp"
#include "fiber/ops/join.hpp"

namespace fiber::models {

// x + DropPath(branch): in training each sample's branch is dropped with probability p and the
// kept ones scaled by 1 / (1 - p); in evaluation x + branch.
template <class T>
Var<T> residual_add(const Var<T>& x, const Var<T>& branch, double p, const nn::ForwardContext<T>& ctx) {
  FIBER_CHECK(!(ctx.training && p > 0), "drop path in training is not available yet");
  return Var<T>(x + branch);
}

// Dropout with probability p in training, the identity in evaluation.
template <class T>
Var<T> dropout(const Var<T>& x, double p, const nn::ForwardContext<T>& ctx) {
  FIBER_CHECK(!(ctx.training && p > 0), "dropout in training is not available yet");
  return x;
}

// x: [B, H, W, C] rolled by `shift` along H and W (torch.roll(x, (shift, shift), (1, 2))).
template <class T>
Var<T> cyclic_shift(const Var<T>& x, std::int64_t shift) {
  Var<T> y = x;
  for (int axis = 1; axis <= 2; ++axis) {
    const std::int64_t n = y.size(axis), s = ((shift % n) + n) % n;
    if (s == 0) continue;
    y = concat({y.narrow(axis, n - s, s), y.narrow(axis, 0, n - s)}, axis);
  }
  return y;
}

}  // namespace fiber::models
