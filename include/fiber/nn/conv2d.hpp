#pragma once
// nn::Conv2d: the official nn.Conv2d. weight: [out, in/groups, kh, kw], bias: [out] (optional).
#include <cstdint>
#include <string>

#include "fiber/nn/module.hpp"
#include "fiber/ops/conv.hpp"

namespace fiber::nn {

template <class T>
struct Conv2d {
  Var<T> weight;  // [out, in/groups, kh, kw]
  Var<T> bias;    // [out], undefined when built without bias
  Conv2dOptions options;

  Conv2d() = default;
  Conv2d(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride = 1, std::int64_t padding = 0,
         bool with_bias = true)
      : weight(make_parameter<T>({out, in, kernel, kernel})),
        bias(with_bias ? make_parameter<T>({out}) : Var<T>()),
        options{{stride, stride}, {padding, padding}, {1, 1}, 1} {}

  std::int64_t out_channels() const { return weight.size(0); }

  // x: [N, in, H, W] -> [N, out, Ho, Wo]
  Var<T> operator()(const Var<T>& x) const { return conv2d(x, weight, bias, options); }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    visit_parameter(f, prefix, "weight", weight);
    visit_parameter(f, prefix, "bias", bias);
  }
};

}  // namespace fiber::nn
