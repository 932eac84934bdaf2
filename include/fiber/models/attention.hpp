#pragma once
// Scaled dot-product attention as both backbones compute it, one function for every attention
// of the model (Swin windows, image-to-text, RoBERTa self- and cross-attention).
#include <cstdint>

#include "fiber/autograd/var.hpp"
#include "fiber/models/regularize.hpp"
#include "fiber/nn/context.hpp"
#include "fiber/ops/linalg.hpp"
#include "fiber/ops/attention_softmax.hpp"

namespace fiber::models {

// q: [..., Nq, d], k and v: [..., Nk, d] (batch dims broadcast) -> [..., Nq, d].
// softmax(scale · q kᵀ + bias + mask) v, with bias (trained, e.g. the relative position bias) and
// mask (constant, additive: -100 or -10000 where attention is cut) broadcast to the scores.
template <class T>
Var<T> attention(const Var<T>& q, const Var<T>& k, const Var<T>& v, double scale, const Var<T>& bias = {},
                 const Tensor<T>& mask = {}) {
  // Scale, bias, mask and softmax in one pass over the scores.
  return matmul(attention_softmax(matmul(q, k.transpose(-1, -2)), T(scale), bias, mask), v);
}

// The same with dropout p on the attention probabilities in training (RoBERTa's
// attention_probs_dropout_prob: each query-key probability dropped, kept ones scaled by 1 / (1 - p));
// in evaluation exactly the function above.
template <class T>
Var<T> attention(const Var<T>& q, const Var<T>& k, const Var<T>& v, double scale, const Var<T>& bias,
                 const Tensor<T>& mask, double dropout_p, const nn::ForwardContext<T>& ctx) {
  const Var<T> probs = attention_softmax(matmul(q, k.transpose(-1, -2)), T(scale), bias, mask);
  return matmul(dropout(probs, dropout_p, ctx), v);
}

// x: [B, L, heads * d] -> [B, heads, L, d]
template <class T>
Var<T> split_heads(const Var<T>& x, std::int64_t heads) {
  const std::int64_t B = x.size(0), L = x.size(1), d = x.size(2) / heads;
  return x.reshape({B, L, heads, d}).permute({0, 2, 1, 3});
}

// x: [B, heads, L, d] -> [B, L, heads * d]
template <class T>
Var<T> merge_heads(const Var<T>& x) {
  const std::int64_t B = x.size(0), h = x.size(1), L = x.size(2), d = x.size(3);
  return x.permute({0, 2, 1, 3}).reshape({B, L, h * d});
}

}  // namespace fiber::models
