#pragma once
// The fine-grained detection head (modeling/rpn/vldyhead.py, VLDyHead with FIBER's settings):
// a tower of DyConv blocks over the pyramid P3–P7, then per level a box regression, a centerness
// and the grounding logits of every location against every text token.
//
// DyConv (one block), for each level l with feature x_l [N, C, H_l, W_l]:
//   offset_mask = offset(x_l)                          conv3x3 C -> 27: 18 offsets, 9 mask logits
//   same   = DyConv[1](x_l)           (stride 1)       modulated deformable conv3x3 + GroupNorm
//   finer  = DyConv[2](x_{l-1})       (stride 2)       if l > 0
//   coarse = upsample_bilinear(DyConv[0](x_{l+1}), size of l, align_corners)   if l < last
//   out_l  = mean over those of f · h_sigmoid(relu(conv1x1(avg_pool(f))))       (scale attention)
//   then DyReLU(out_l): fc 256 -> 64 -> relu -> 1024 -> h_sigmoid, split [a1 | b1 | a2 | b2],
//        max(out·(2(a1 − ½) + 1) + (b1 − ½), out·2(a2 − ½) + (b2 − ½))
// All three convolutions take level l's offsets and mask. The official CUDA kernel does not check
// their size: a convolution whose output is smaller than level l (DyConv[0] on the coarser level)
// reads the first 18·Ho·Wo offsets and 9·Ho·Wo mask values of image n's buffers in memory order
// (offsets: channels 0–17 of the 27-channel output; mask: the sigmoid of channels 18–26).
// level_offsets() reproduces that read, so official weights give the official numbers.
//
// The grounding head, with T the fused text features [N, L, lang_dim] masked to zero at padding:
//   e = T / max(|T|, 1e-12) per token;  tokens = dot_product_projection_text(e / 2)   [N, L, C]
//   logits[n, hw, j] = <x[n, :, hw], tokens[n, j]> / exp(log_scale) + <e[n, j], bias_lang> + bias0,
//   clamped to ±50000;  box = bbox_pred(x) · scales[l];  centerness = centerness(x).
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "fiber/models/fine_config.hpp"
#include "fiber/nn/conv2d.hpp"
#include "fiber/nn/group_norm.hpp"
#include "fiber/nn/linear.hpp"
#include "fiber/ops/deform_conv.hpp"
#include "fiber/ops/interpolate.hpp"
#include "fiber/ops/join.hpp"
#include "fiber/ops/linalg.hpp"
#include "fiber/ops/pooling.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber::models {

// h_sigmoid: relu6(x + 3) / 6.
template <class X>
auto h_sigmoid(const X& x) { return clamp(x + 3.0, 0.0, 6.0) / 6.0; }

// A level's offset-conv output [N, 27, h, w] split into offsets [N, 18, h, w] and mask
// sigmoid [N, 9, h, w], once per level for the three convolutions that read it.
template <class T>
struct OffsetsAndMask {
  Var<T> offset, mask;
};
template <class T>
OffsetsAndMask<T> split_offset_mask(const Var<T>& offset_mask) {
  return {offset_mask.narrow(1, 0, 18), Var<T>(sigmoid(offset_mask.narrow(1, 18, 9)))};
}

// The offsets [N, 18, ho, wo] and mask [N, 9, ho, wo] that a deformable conv with output size
// (ho, wo) reads from its level's (see the header comment).
template <class T>
OffsetsAndMask<T> level_offsets(const OffsetsAndMask<T>& level, std::int64_t ho, std::int64_t wo) {
  const std::int64_t N = level.offset.size(0), h = level.offset.size(2), w = level.offset.size(3);
  if (ho == h && wo == w) return level;
  FIBER_CHECK(ho * wo <= h * w, "DyConv: a convolution output of ", ho, "x", wo, " would read past the ", h, "x", w,
              " offsets of its level");
  return {level.offset.reshape({N, 18 * h * w}).narrow(1, 0, 18 * ho * wo).reshape({N, 18, ho, wo}),
          level.mask.reshape({N, 9 * h * w}).narrow(1, 0, 9 * ho * wo).reshape({N, 9, ho, wo})};
}

// Conv3x3Norm with a deformable conv: ModulatedDeformConv 3x3 (padding 1) + GroupNorm.
template <class T, DyHeadConfig C>
struct DeformConvNorm {
  Var<T> weight;  // [C, C, 3, 3]
  Var<T> bias;    // [C]
  nn::GroupNorm<T> bn{C.gn_groups, C.channels};
  std::int64_t stride = 1;

  explicit DeformConvNorm(std::int64_t s = 1)
      : weight(nn::make_parameter<T>({C.channels, C.channels, 3, 3})), bias(nn::make_parameter<T>({C.channels})),
        stride(s) {}

  static std::int64_t out_size(std::int64_t in, std::int64_t s) { return (in - 1) / s + 1; }

  // x: [N, C, H, W]; level: the split offset-conv output of the level being computed.
  Var<T> operator()(const Var<T>& x, const OffsetsAndMask<T>& level) const {
    const auto [offset, mask] = level_offsets(level, out_size(x.size(2), stride), out_size(x.size(3), stride));
    return bn(deform_conv2d(x, offset, mask, weight, bias, Conv2dOptions{{stride, stride}, {1, 1}, {1, 1}, 1}));
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    nn::visit_parameter(f, prefix, "conv.weight", weight);
    nn::visit_parameter(f, prefix, "conv.bias", bias);
    bn.visit(prefix + "bn.", f);
  }
};

template <class T, DyHeadConfig C>
struct DyConv {
  std::array<DeformConvNorm<T, C>, 3> convs{DeformConvNorm<T, C>(1), DeformConvNorm<T, C>(1), DeformConvNorm<T, C>(2)};
  nn::Conv2d<T> attn{C.channels, 1, 1};                                             // AttnConv.1
  nn::Linear<T> fc0{C.channels, C.dyrelu_squeeze()}, fc2{C.dyrelu_squeeze(), 4 * C.channels};  // relu.fc.0, .2
  nn::Conv2d<T> offset{C.channels, 27, 3, 1, 1};

  // features: one [N, C, H_l, W_l] per level -> the same shapes.
  std::vector<Var<T>> operator()(const std::vector<Var<T>>& features) const {
    const std::size_t L = features.size();
    std::vector<Var<T>> out(L);
    for (std::size_t l = 0; l < L; ++l) {
      const Var<T>& x = features[l];
      const OffsetsAndMask<T> offset_mask = split_offset_mask(offset(x));
      std::vector<Var<T>> parts;
      parts.reserve(3);
      parts.push_back(convs[1](x, offset_mask));
      if (l > 0) parts.push_back(convs[2](features[l - 1], offset_mask));
      if (l + 1 < L) parts.push_back(upsample_bilinear(convs[0](features[l + 1], offset_mask), {x.size(2), x.size(3)}));
      // Scale attention: each part weighted by h_sigmoid(relu(conv1x1(avg_pool(part)))) [N, 1, 1, 1].
      Var<T> sum;
      for (const Var<T>& p : parts) {
        const Var<T> a = attn(adaptive_avg_pool2d(p, {1, 1}));
        const Var<T> weighted = Var<T>(p * h_sigmoid(relu(a)));
        sum = sum.defined() ? Var<T>(sum + weighted) : weighted;
      }
      out[l] = dyrelu(Var<T>(sum / double(parts.size())));
    }
    return out;
  }

  // DYReLU (K2, bias, lambda_a 2, init_a (1, 0), init_b (0, 0)). x: [N, C, H, W].
  Var<T> dyrelu(const Var<T>& x) const {
    const std::int64_t N = x.size(0), Ch = C.channels;
    const Var<T> pooled = adaptive_avg_pool2d(x, {1, 1}).reshape({N, Ch});
    const Var<T> y = Var<T>(h_sigmoid(fc2(Var<T>(relu(fc0(pooled))))));  // [N, 4C]
    auto part = [&](int k) { return y.narrow(1, k * Ch, Ch).reshape({N, Ch, 1, 1}); };
    const Var<T> a1 = part(0), b1 = part(1), a2 = part(2), b2 = part(3);
    return Var<T>(maximum(x * ((a1 - 0.5) * 2.0 + 1.0) + (b1 - 0.5), x * ((a2 - 0.5) * 2.0 + 0.0) + (b2 - 0.5)));
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    for (int i = 0; i < 3; ++i) convs[std::size_t(i)].visit(prefix + "DyConv." + std::to_string(i) + ".", f);
    attn.visit(prefix + "AttnConv.1.", f);
    fc0.visit(prefix + "relu.fc.0.", f);
    fc2.visit(prefix + "relu.fc.2.", f);
    offset.visit(prefix + "offset.", f);
  }
};

// What the head gives per level l (N images, H_l·W_l locations, L text tokens).
template <class T>
struct HeadOutputs {
  std::vector<Var<T>> box_regression;  // [N, 4, H_l, W_l]
  std::vector<Var<T>> centerness;      // [N, 1, H_l, W_l]
  std::vector<Var<T>> token_logits;    // [N, H_l·W_l, L]
};

template <class T, DyHeadConfig C>
struct DyHead {
  Var<T> log_scale = Var<T>::parameter(Tensor<T>::full({1}, T(C.log_scale)));
  Var<T> bias_lang = Var<T>::parameter(Tensor<T>::zeros({C.lang_dim}));
  Var<T> bias0 = Var<T>::parameter(Tensor<T>::full({1}, T(C.bias0_init())));
  std::vector<DyConv<T, C>> tower = std::vector<DyConv<T, C>>(std::size_t(C.num_convs));
  nn::Conv2d<T> cls_logits{C.channels, C.num_classes, 1};  // unused by grounding; kept for the keys
  nn::Conv2d<T> bbox_pred{C.channels, 4, 1};
  nn::Conv2d<T> centerness{C.channels, 1, 1};
  nn::Linear<T> dot_product_projection_text{C.lang_dim, C.channels};
  std::vector<Var<T>> scales;  // per level, [1], initialised to 1

  DyHead() {
    for (int l = 0; l < C.levels; ++l) scales.push_back(Var<T>::parameter(Tensor<T>::ones({1})));
  }

  // The text side, which does not depend on the image: e = L2-normalised text features, then the
  // projected tokens [N, L, C] and each token's bias [N, 1, L]. text: [N, L, lang_dim], zero at
  // padding.
  struct TextSide {
    Var<T> tokens, bias;
  };
  TextSide text_side(const Var<T>& text) const {
    FIBER_CHECK(text.dim() == 3 && text.size(2) == C.lang_dim, "DyHead: text features must be [N, L, ", C.lang_dim,
                "], got ", text.shape());
    // F.normalize: x / max(|x|, 1e-12), written as x · rsqrt(max(|x|², 1e-24)) so that padding rows
    // (all zero) get zero gradients, not 0 · inf.
    const Var<T> norm2 = sum(Var<T>(text * text), {-1}, true);
    const Var<T> e = Var<T>(text * rsqrt(maximum(norm2, 1e-24)));
    const Var<T> tokens = dot_product_projection_text(Var<T>(e / 2.0));
    const std::int64_t N = text.size(0), L = text.size(1);
    const Var<T> bias = Var<T>(matmul(e, bias_lang.reshape({C.lang_dim, 1})).reshape({N, 1, L}) + bias0);
    return {tokens, bias};
  }

  // features: P3..P7 [N, C, H_l, W_l]; text: as text_side.
  HeadOutputs<T> operator()(const std::vector<Var<T>>& features, const Var<T>& text) const {
    return (*this)(features, text_side(text));
  }
  HeadOutputs<T> operator()(std::vector<Var<T>> x, const TextSide& t) const {
    FIBER_CHECK(std::int64_t(x.size()) == C.levels, "DyHead: ", x.size(), " levels, the head has ", C.levels);
    for (const Var<T>& f : x)
      FIBER_CHECK(f.dim() == 4 && f.size(1) == C.channels && f.size(0) == t.tokens.size(0), "DyHead: a level must be [",
                  t.tokens.size(0), ", ", C.channels, ", H, W], got ", f.shape());
    for (const DyConv<T, C>& block : tower) x = block(x);
    HeadOutputs<T> out;
    const Var<T> tokens_t = t.tokens.transpose(1, 2);  // [N, C, L]
    for (std::size_t l = 0; l < x.size(); ++l) {
      const Var<T>& f = x[l];
      const std::int64_t N = f.size(0), HW = f.size(2) * f.size(3);
      out.box_regression.push_back(Var<T>(bbox_pred(f) * scales[l]));
      out.centerness.push_back(centerness(f));
      const Var<T> queries = f.reshape({N, C.channels, HW}).transpose(1, 2);  // [N, HW, C]
      const double lim = C.dot_product_clamp;
      out.token_logits.push_back(Var<T>(clamp(matmul(queries, tokens_t) / exp(log_scale) + t.bias, -lim, lim)));
    }
    return out;
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    nn::visit_parameter(f, prefix, "log_scale", log_scale);
    nn::visit_parameter(f, prefix, "bias_lang", bias_lang);
    nn::visit_parameter(f, prefix, "bias0", bias0);
    for (std::size_t i = 0; i < tower.size(); ++i) tower[i].visit(prefix + "dyhead_tower." + std::to_string(i) + ".", f);
    cls_logits.visit(prefix + "cls_logits.", f);
    bbox_pred.visit(prefix + "bbox_pred.", f);
    centerness.visit(prefix + "centerness.", f);
    dot_product_projection_text.visit(prefix + "dot_product_projection_text.", f);
    for (std::size_t i = 0; i < scales.size(); ++i) nn::visit_parameter(f, prefix + "scales." + std::to_string(i) + ".", "scale", scales[i]);
  }
};

}  // namespace fiber::models
