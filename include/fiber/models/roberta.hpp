#pragma once
// The RoBERTa text backbone of FIBER (FIBER_SPEC §1, §3): post-LN layers whose self-attention
// output skips its residual and LayerNorm (the layer adds them after the optional text-to-image
// cross-attention), crossattention_t2i in the fused layers. Official names: embeddings.*,
// encoder.layer.N.*, pooler.dense (coarse only).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fiber/models/attention.hpp"
#include "fiber/models/coarse_config.hpp"
#include "fiber/models/regularize.hpp"
#include "fiber/nn/context.hpp"
#include "fiber/nn/embedding.hpp"
#include "fiber/nn/layer_norm.hpp"
#include "fiber/nn/linear.hpp"
#include "fiber/ops/linear_gelu.hpp"

namespace fiber::models {

// ids: [B, L] -> position ids [B, L]: padding keeps pad_id, tokens count from pad_id + 1.
inline Tensor<std::int64_t> roberta_position_ids(const Tensor<std::int64_t>& ids, std::int64_t pad_id) {
  const Tensor<std::int64_t> c = ids.contiguous();
  Tensor<std::int64_t> pos = Tensor<std::int64_t>::empty(c.shape());
  const std::int64_t L = c.size(-1), rows = L ? c.numel() / L : 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int64_t count = 0;
    for (std::int64_t i = 0; i < L; ++i) {
      const bool token = c.data()[r * L + i] != pad_id;
      count += token;
      pos.data()[r * L + i] = token ? count + pad_id : pad_id;
    }
  }
  return pos;
}

// mask: [B, L] of 1 (token) / 0 (padding) -> [B, 1, 1, L] additive: 0 / -10000 (transformers 4.6).
template <class T>
Tensor<T> extended_attention_mask(const Tensor<std::int64_t>& mask) {
  FIBER_CHECK(mask.dim() == 2, "text mask: expects [B, L], got ", mask.shape());
  const Tensor<std::int64_t> m = mask.contiguous();
  Tensor<T> out = Tensor<T>::empty({m.size(0), 1, 1, m.size(1)});
  for (std::int64_t i = 0; i < m.numel(); ++i) out.data()[i] = m.data()[i] ? T(0) : T(-10000);
  return out;
}

// Where the state dicts of the two FIBER text backbones differ (the computation is the same).
enum class RobertaLayout {
  coarse,  // alpha_t2i in every layer; crossattention_t2i.output.LayerNorm stored (never applied); pooler
  fine,    // roberta_fused_model_v2: alpha_t2i only in fused layers; that LayerNorm is an Identity; no pooler
};

template <class T>
struct RobertaEmbeddings {
  nn::Embedding<T> word_embeddings, position_embeddings, token_type_embeddings;
  nn::LayerNorm<T> LayerNorm;
  std::int64_t pad_id = 1;
  double dropout_p = 0;

  RobertaEmbeddings() = default;
  explicit RobertaEmbeddings(const RobertaConfig& c)
      : word_embeddings(c.vocab_size, c.hidden, c.pad_token_id),
        position_embeddings(c.max_positions, c.hidden, c.pad_token_id),
        token_type_embeddings(c.type_vocab_size, c.hidden), LayerNorm(c.hidden, c.layer_norm_eps),
        pad_id(c.pad_token_id), dropout_p(c.dropout) {}

  // ids: [B, L] -> [B, L, H]
  Var<T> operator()(const Tensor<std::int64_t>& ids, const nn::ForwardContext<T>& ctx) const {
    FIBER_CHECK(ids.dim() == 2, "text embeddings: ids must be [B, L], got ", ids.shape());
    const Tensor<std::int64_t> positions = roberta_position_ids(ids, pad_id);
    const Tensor<std::int64_t> types = Tensor<std::int64_t>::zeros({1});
    const Var<T> sum = word_embeddings(ids) + token_type_embeddings(types) + position_embeddings(positions);
    return dropout(LayerNorm(sum), dropout_p, ctx);
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    nn::visit_derived<T>(f, prefix, "position_ids");
    word_embeddings.visit(prefix + "word_embeddings.", f);
    position_embeddings.visit(prefix + "position_embeddings.", f);
    token_type_embeddings.visit(prefix + "token_type_embeddings.", f);
    LayerNorm.visit(prefix + "LayerNorm.", f);
  }
};

// RobertaAttention: self.{query,key,value} + output.dense (output.LayerNorm is applied by the
// layer for self-attention and never for the cross-attention, where the coarse model stores it
// unused and the fine-grained one has none).
template <class T>
struct RobertaAttention {
  std::int64_t heads = 0;
  nn::Linear<T> query, key, value, dense;
  bool has_norm = true;
  nn::LayerNorm<T> LayerNorm;  // output.LayerNorm
  double dropout_p = 0;

  RobertaAttention() = default;
  RobertaAttention(const RobertaConfig& c, std::int64_t kv_dim, bool output_norm = true)
      : heads(c.heads), query(c.hidden, c.hidden), key(kv_dim, c.hidden), value(kv_dim, c.hidden),
        dense(c.hidden, c.hidden), has_norm(output_norm), dropout_p(c.dropout) {
    if (has_norm) LayerNorm = nn::LayerNorm<T>(c.hidden, c.layer_norm_eps);
  }

  // x: [B, L, H] attends to kv: [B, Lk, Dk] (x itself for self-attention) -> dense output [B, L, H].
  // In training, dropout on the attention probabilities, then on the dense output (HF's order).
  Var<T> operator()(const Var<T>& x, const Var<T>& kv, const Tensor<T>& mask, const nn::ForwardContext<T>& ctx) const {
    const std::int64_t d = query.out_features() / heads;
    const Var<T> ctx_heads = attention(split_heads(query(x), heads), split_heads(key(kv), heads),
                                       split_heads(value(kv), heads), 1.0 / std::sqrt(double(d)), Var<T>(), mask,
                                       dropout_p, ctx);
    return dropout(dense(merge_heads(ctx_heads)), dropout_p, ctx);
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    query.visit(prefix + "self.query.", f);
    key.visit(prefix + "self.key.", f);
    value.visit(prefix + "self.value.", f);
    dense.visit(prefix + "output.dense.", f);
    if (has_norm) LayerNorm.visit(prefix + "output.LayerNorm.", f);
  }
};

template <class T>
struct RobertaLayer {
  Var<T> alpha_t2i;  // [1]; used by the fused layers (the coarse layout stores it in every layer)
  RobertaAttention<T> attention;
  bool fused = false, has_alpha = true;
  RobertaAttention<T> crossattention_t2i;
  nn::Linear<T> intermediate, output;  // intermediate.dense, output.dense
  nn::LayerNorm<T> output_norm;        // output.LayerNorm
  double dropout_p = 0;

  RobertaLayer() = default;
  // image_dim > 0: the layer has crossattention_t2i over image tokens of that width.
  RobertaLayer(const RobertaConfig& c, std::int64_t image_dim, RobertaLayout layout = RobertaLayout::coarse)
      : attention(c, c.hidden), fused(image_dim > 0), has_alpha(fused || layout == RobertaLayout::coarse),
        intermediate(c.hidden, c.intermediate), output(c.intermediate, c.hidden),
        output_norm(c.hidden, c.layer_norm_eps), dropout_p(c.dropout) {
    if (has_alpha) alpha_t2i = nn::make_parameter<T>({1});
    if (fused) crossattention_t2i = RobertaAttention<T>(c, image_dim, layout == RobertaLayout::coarse);
  }

  // x: [B, L, H]; mask: [B, 1, 1, L]; image: [B, Li, Di] or null (text only).
  // last_norm = false skips the output LayerNorm (the last layer on the fused path).
  Var<T> operator()(const Var<T>& x, const Tensor<T>& mask, const nn::ForwardContext<T>& ctx,
                    const Var<T>* image = nullptr, bool last_norm = true) const {
    Var<T> a = attention(x, x, mask, ctx);
    if (image) {
      FIBER_CHECK(fused, "text layer: image tokens given to a layer without crossattention_t2i");
      const Var<T> c = crossattention_t2i(a, *image, Tensor<T>(), ctx);
      a = Var<T>(alpha_t2i * c + a);
    }
    const Var<T> h = attention.LayerNorm(Var<T>(a + x));
    Var<T> out = dropout(output(linear_gelu(h, intermediate.weight, intermediate.bias)), dropout_p, ctx);
    out = Var<T>(out + h);
    return last_norm ? output_norm(out) : out;
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    if (has_alpha) nn::visit_parameter(f, prefix, "alpha_t2i", alpha_t2i);
    attention.visit(prefix + "attention.", f);
    if (fused) crossattention_t2i.visit(prefix + "crossattention_t2i.", f);
    intermediate.visit(prefix + "intermediate.dense.", f);
    output.visit(prefix + "output.dense.", f);
    output_norm.visit(prefix + "output.LayerNorm.", f);
  }
};

// embeddings, encoder.layer.N and, in the coarse layout, pooler (kept for the state dict; FIBER's
// heads use their own poolers).
template <class T>
struct Roberta {
  RobertaConfig config;
  RobertaLayout layout = RobertaLayout::coarse;
  RobertaEmbeddings<T> embeddings;
  std::vector<RobertaLayer<T>> layers;
  nn::Linear<T> pooler;

  Roberta() = default;
  // image_dims[i] > 0: layer i cross-attends to image tokens of that width.
  Roberta(const RobertaConfig& c, const std::vector<std::int64_t>& image_dims, RobertaLayout l = RobertaLayout::coarse)
      : config(c), layout(l), embeddings(c) {
    for (int i = 0; i < c.layers; ++i) layers.emplace_back(c, image_dims.at(std::size_t(i)), layout);
    if (layout == RobertaLayout::coarse) pooler = nn::Linear<T>(c.hidden, c.hidden);
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    embeddings.visit(prefix + "embeddings.", f);
    for (std::size_t i = 0; i < layers.size(); ++i) layers[i].visit(prefix + "encoder.layer." + std::to_string(i) + ".", f);
    if (layout == RobertaLayout::coarse) pooler.visit(prefix + "pooler.dense.", f);
  }
};

}  // namespace fiber::models
