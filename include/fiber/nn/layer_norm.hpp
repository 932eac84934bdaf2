#pragma once
// nn::LayerNorm over the last dimension, with weight and bias (the official nn.LayerNorm).
#include <cstdint>
#include <string>

#include "fiber/nn/module.hpp"
#include "fiber/ops/layer_norm.hpp"

namespace fiber::nn {

template <class T>
struct LayerNorm {
  Var<T> weight;  // [C]
  Var<T> bias;    // [C]
  double eps = 1e-5;

  LayerNorm() = default;
  explicit LayerNorm(std::int64_t channels, double epsilon = 1e-5)
      : weight(Var<T>::parameter(Tensor<T>::ones({channels}))), bias(make_parameter<T>({channels})), eps(epsilon) {}

  // x: [*, C]
  Var<T> operator()(const Var<T>& x) const { return layer_norm(x, Shape{weight.size(0)}, weight, bias, eps); }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    visit_parameter(f, prefix, "weight", weight);
    visit_parameter(f, prefix, "bias", bias);
  }
};

}  // namespace fiber::nn
