#pragma once
// The heads of coarse FIBER (FIBER_SPEC §2): poolers, ITM, MLM. Official names:
// *_pooler.dense, itm_score.fc, mlm_score.{transform.dense, transform.LayerNorm, decoder, bias}.
#include <cstdint>
#include <string>

#include "fiber/nn/layer_norm.hpp"
#include "fiber/nn/linear.hpp"
#include "fiber/ops/linear_gelu.hpp"

namespace fiber::models {

// tanh(dense(x)). x: [B, H] -> [B, H]
template <class T>
struct Pooler {
  nn::Linear<T> dense;
  Pooler() = default;
  explicit Pooler(std::int64_t hidden) : dense(hidden, hidden) {}
  Var<T> operator()(const Var<T>& x) const { return Var<T>(tanh(dense(x))); }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    dense.visit(prefix + "dense.", f);
  }
};

// BertPredictionHeadTransform (dense, erf GELU, LayerNorm) then an untied decoder and its bias.
// x: [B, L, H] -> [B, L, V]
template <class T>
struct MlmHead {
  nn::Linear<T> transform;
  nn::LayerNorm<T> norm;
  nn::Linear<T> decoder;  // no bias
  Var<T> bias;            // [V]

  MlmHead() = default;
  MlmHead(std::int64_t hidden, std::int64_t vocab, double eps)
      : transform(hidden, hidden), norm(hidden, eps), decoder(hidden, vocab, false), bias(nn::make_parameter<T>({vocab})) {}

  Var<T> operator()(const Var<T>& x) const {
    return linear(norm(linear_gelu(x, transform.weight, transform.bias)), decoder.weight, bias);
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    nn::visit_parameter(f, prefix, "bias", bias);
    transform.visit(prefix + "transform.dense.", f);
    norm.visit(prefix + "transform.LayerNorm.", f);
    decoder.visit(prefix + "decoder.", f);
  }
};

}  // namespace fiber::models
