#pragma once
// nn::GroupNorm: the official nn.GroupNorm(num_groups, num_channels) with its affine weight and
// bias ([C], initialised to 1 and 0) and eps 1e-5.
#include <cstdint>
#include <string>

#include "fiber/nn/module.hpp"
#include "fiber/ops/group_norm.hpp"

namespace fiber::nn {

template <class T>
struct GroupNorm {
  std::int64_t groups = 1;
  double eps = 1e-5;
  Var<T> weight;  // [C]
  Var<T> bias;    // [C]

  GroupNorm() = default;
  GroupNorm(std::int64_t num_groups, std::int64_t channels)
      : groups(num_groups),
        weight(Var<T>::parameter(Tensor<T>::ones({channels}))),
        bias(Var<T>::parameter(Tensor<T>::zeros({channels}))) {}

  // x: [N, C, *] -> the same shape
  Var<T> operator()(const Var<T>& x) const { return group_norm(x, groups, weight, bias, eps); }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    visit_parameter(f, prefix, "weight", weight);
    visit_parameter(f, prefix, "bias", bias);
  }
};

}  // namespace fiber::nn
