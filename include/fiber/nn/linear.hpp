#pragma once
// nn::Linear: y = x·Wᵀ + b, the official nn.Linear. weight: [out, in], bias: [out] (optional).
#include <cstdint>
#include <string>

#include "fiber/nn/module.hpp"
#include "fiber/ops/linalg.hpp"

namespace fiber::nn {

template <class T>
struct Linear {
  Var<T> weight;  // [out, in]
  Var<T> bias;    // [out], undefined when built without bias

  Linear() = default;
  Linear(std::int64_t in, std::int64_t out, bool with_bias = true)
      : weight(make_parameter<T>({out, in})), bias(with_bias ? make_parameter<T>({out}) : Var<T>()) {}

  std::int64_t in_features() const { return weight.size(1); }
  std::int64_t out_features() const { return weight.size(0); }

  // x: [*, in] -> [*, out]
  Var<T> operator()(const Var<T>& x) const { return linear(x, weight, bias); }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    visit_parameter(f, prefix, "weight", weight);
    visit_parameter(f, prefix, "bias", bias);
  }
};

}  // namespace fiber::nn
