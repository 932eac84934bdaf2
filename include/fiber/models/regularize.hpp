#pragma once
// The model's dropout and residual connections with stochastic depth, active in training only.
#include "fiber/autograd/var.hpp"
#include "fiber/nn/context.hpp"
#include "fiber/ops/dropout.hpp"

namespace fiber::models {

// x + DropPath(branch): in training each sample's branch is dropped with probability p and the
// kept ones scaled by 1 / (1 - p) (timm's DropPath); in evaluation x + branch.
template <class T>
Var<T> residual_add(const Var<T>& x, const Var<T>& branch, double p, const nn::ForwardContext<T>& ctx) {
  if (!ctx.training || p == 0) return Var<T>(x + branch);
  return Var<T>(x + drop_path(branch, p, true, ctx.generator()));
}

// Dropout with probability p in training, the identity in evaluation.
template <class T>
Var<T> dropout(const Var<T>& x, double p, const nn::ForwardContext<T>& ctx) {
  if (!ctx.training || p == 0) return x;
  return fiber::dropout(x, p, true, ctx.generator());
}

}  // namespace fiber::models
