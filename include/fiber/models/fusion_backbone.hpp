#pragma once
// The fusion backbone of fine-grained FIBER (FIBER_SPEC §3; the official FusionSwinTransformer of
// fusion_swin_transformer_v2.py / _v3.py with roberta_fused_model_v2.py): Swin and RoBERTa with
// cross-attention between them in the top blocks, then the FPN.
//
//   fusion_backbone.backbone.body.*                     FusionSwin: patch_embed, layers, norm1..3
//   fusion_backbone.backbone.fpn.*                      Fpn
//   fusion_backbone.language_backbone.body.model.*      Roberta (fine layout: no pooler)
//
// The pass, as the official forward orders it:
//   text:  embeddings, layers [0, first_fused_layer)             (text_prefix: no image needed)
//   image: patch embedding, stages 1-2, stage 3 up to first_fused_block; C2, C3 from stages 1, 2
//   fused: each remaining stage-3 block and stage-4 block pairs with the next text layer; the
//          image block reads the text entering the pair, the text layer the image tokens entering
//          it (no mask on them), and both are updated together; C4, C5 from stages 3, 4.
// Images of any size are zero-padded (bottom, right) to a multiple of size_divisibility, as the
// official batching does; every feature map is of the padded size.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fiber/models/fine_config.hpp"
#include "fiber/models/fpn.hpp"
#include "fiber/models/roberta.hpp"
#include "fiber/models/swin.hpp"
#include "fiber/ops/pad.hpp"

namespace fiber::models {

// The image body (backbone.body): Swin blocks of any map size, stage outputs normalised by
// norm1..norm3 (norm0 is an Identity in the RETINANET arrangement), no final norm.
template <class T>
struct FusionSwin {
  SwinConfig config;
  std::int64_t window = 0;
  PatchEmbed<T> patch_embed;
  std::vector<SwinStage<T>> layers;
  std::array<nn::LayerNorm<T>, 3> stage_norms;  // norm1, norm2, norm3
  ShiftMaskCache<T> masks;                       // the shift masks of the map sizes seen so far

  FusionSwin() = default;
  // Blocks from `fused_from` in stage 3 and all of stage 4 carry the image-to-text attention.
  FusionSwin(const SwinConfig& c, int win, std::int64_t text_dim, int fused_from, bool i2t_query_norm)
      : config(c), window(win), patch_embed(c),
        layers(make_swin_stages<T>(c, win, false, text_dim, fused_from, i2t_query_norm)) {
    for (int s = 1; s < 4; ++s) stage_norms[std::size_t(s - 1)] = nn::LayerNorm<T>(c.stage_dim(s));
  }

  // The shift mask of stage maps H x W (padded to the window): [nW, N, N].
  Tensor<T> shift_mask(std::int64_t H, std::int64_t W) const {
    return masks.get(SwinBlock<T>::round_up(H, window), SwinBlock<T>::round_up(W, window), window, window / 2);
  }

  // Stage s's output x: [B, H*W, C] -> the feature map [B, C, H, W] (normalised for s >= 1).
  Var<T> stage_map(int s, const Var<T>& x, std::int64_t H, std::int64_t W) const {
    const Var<T> y = s == 0 ? x : stage_norms[std::size_t(s - 1)](x);
    return y.reshape({x.size(0), H, W, x.size(2)}).permute({0, 3, 1, 2});
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    patch_embed.visit(prefix + "patch_embed.", f);
    for (std::size_t s = 0; s < layers.size(); ++s) layers[s].visit(prefix + "layers." + std::to_string(s) + ".", f);
    for (int s = 1; s < 4; ++s) stage_norms[std::size_t(s - 1)].visit(prefix + "norm" + std::to_string(s) + ".", f);
  }
};

// The text after the layers below the fusion point: what set_prompt computes once per prompt.
template <class T>
struct FineTextPrefix {
  Var<T> tokens;                // [B, L, H]
  Tensor<T> mask;               // [B, 1, 1, L] additive
  Tensor<std::int64_t> valid;   // [B, L] 1 for tokens, 0 for padding
};

template <class T>
struct FusionOutputs {
  Var<T> c2;                   // [B, C1, H/4, W/4] (norm0 is an Identity; the FPN ignores it)
  std::array<Var<T>, 3> c;     // C3, C4, C5: [B, C_s, H/2^(s+2), W/2^(s+2)]
  Var<T> text;                 // [B, L, H] the fused text tokens (language_dict_features["hidden"])
  Var<T> text_embedded;        // [B, L, H] the same, zero at padding ("embedded": the DyHead's text)
  std::int64_t height = 0, width = 0;  // the padded input size
};

template <class T, FiberFineConfig C>
struct FusionBackbone {
  static_assert(check_fine_config<C>());
  FusionSwin<T> body;
  Fpn<T, C.fpn> fpn;
  Roberta<T> text;

  FusionBackbone()
      : body(C.swin, C.window, C.text.hidden, C.first_fused_block(), C.i2t_query_norm),
        text(C.text, text_image_dims(), RobertaLayout::fine) {}

  // Width of the image tokens each text layer cross-attends to (0: none).
  static std::vector<std::int64_t> text_image_dims() {
    std::vector<std::int64_t> dims(std::size_t(C.text.layers), 0);
    for (int i = C.first_fused_layer(); i < C.text.layers; ++i)
      dims[std::size_t(i)] = i < C.text.layers - C.swin.depths[3] ? C.swin.stage_dim(2) : C.swin.stage_dim(3);
    return dims;
  }

  // ids, valid: [B, L] (valid: 1 token, 0 padding) -> the text entering the fused pairs.
  FineTextPrefix<T> text_prefix(const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& valid,
                                const nn::ForwardContext<T>& ctx = {}) const {
    FIBER_CHECK(ids.dim() == 2 && ids.size(1) >= 1, "FIBER fine: token ids must be [B, L] with L >= 1, got ", ids.shape());
    FIBER_CHECK(valid.shape() == ids.shape(), "FIBER fine: mask ", valid.shape(), " does not match ids ", ids.shape());
    FIBER_CHECK(ids.size(1) <= C.text.max_positions - C.text.pad_token_id - 1, "FIBER fine: ", ids.size(1),
                " tokens; this model has positions for at most ", C.text.max_positions - C.text.pad_token_id - 1);
    FineTextPrefix<T> p{text.embeddings(ids, ctx), extended_attention_mask<T>(valid), valid.contiguous()};
    for (int i = 0; i < C.first_fused_layer(); ++i) {
      p.tokens = text.layers[std::size_t(i)](p.tokens, p.mask, ctx);
      if (ctx.hook) ctx.emit("fine.text.layer." + std::to_string(i), p.tokens);
    }
    return p;
  }

  // images: [B, 3, H, W] (any H, W; padded here) with the text of text_prefix (B rows).
  FusionOutputs<T> operator()(const Var<T>& images, const FineTextPrefix<T>& prefix,
                              const nn::ForwardContext<T>& ctx = {}) const {
    FIBER_CHECK(images.dim() == 4 && images.size(1) == C.swin.in_chans && images.size(2) >= 1 && images.size(3) >= 1,
                "FIBER fine: images must be [B, ", C.swin.in_chans, ", H, W], got ", images.shape());
    FIBER_CHECK(prefix.tokens.defined() && prefix.tokens.size(0) == images.size(0), "FIBER fine: ", images.size(0),
                " images for ", prefix.tokens.defined() ? prefix.tokens.size(0) : 0, " texts");
    FusionOutputs<T> out;
    const std::int64_t d = C.size_divisibility;
    out.height = SwinBlock<T>::round_up(images.size(2), d);
    out.width = SwinBlock<T>::round_up(images.size(3), d);
    const Var<T> padded = out.height == images.size(2) && out.width == images.size(3)
                              ? images
                              : pad(images, {0, out.width - images.size(3), 0, out.height - images.size(2)});
    Var<T> img = body.patch_embed(padded);
    std::int64_t H = out.height / C.swin.patch_size, W = out.width / C.swin.patch_size;
    // Stages 1-2 and stage 3 below the fusion point: image only.
    for (int s = 0; s < 2; ++s) {
      img = run_blocks(s, img, H, W, 0, C.swin.depths[s], ctx);
      (s == 0 ? out.c2 : out.c[0]) = body.stage_map(s, img, H, W);
      img = body.layers[std::size_t(s)].downsample.forward(img, H, W);
      H /= 2, W /= 2;
    }
    img = run_blocks(2, img, H, W, 0, C.first_fused_block(), ctx);
    // The fused pairs.
    Var<T> txt = prefix.tokens;
    int layer = C.first_fused_layer();
    for (int s = 2; s < 4; ++s) {
      const Tensor<T> mask = body.shift_mask(H, W);
      const int first = s == 2 ? C.first_fused_block() : 0;
      for (int b = first; b < C.swin.depths[s]; ++b, ++layer) {
        const TextContext<T> t{&txt, &prefix.mask};
        const Var<T> next_img = body.layers[std::size_t(s)].blocks[std::size_t(b)].forward(img, H, W, mask, ctx, t);
        txt = text.layers[std::size_t(layer)](txt, prefix.mask, ctx, &img);
        img = next_img;
        if (ctx.hook) {
          ctx.emit("fine.image.layers." + std::to_string(s) + ".blocks." + std::to_string(b), img);
          ctx.emit("fine.text.layer." + std::to_string(layer), txt);
        }
      }
      out.c[std::size_t(s - 1)] = body.stage_map(s, img, H, W);
      if (s == 2) {
        img = body.layers[2].downsample.forward(img, H, W);
        H /= 2, W /= 2;
      }
    }
    out.text = txt;
    out.text_embedded = Var<T>(txt * valid_weights(prefix.valid));
    return out;
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    body.visit(prefix + "backbone.body.", f);
    fpn.visit(prefix + "backbone.fpn.", f);
    text.visit(prefix + "language_backbone.body.model.", f);
  }

 private:
  // Blocks [from, to) of stage s (image only) on an H x W map.
  Var<T> run_blocks(int s, Var<T> x, std::int64_t H, std::int64_t W, int from, int to,
                    const nn::ForwardContext<T>& ctx) const {
    if (from >= to) return x;
    const Tensor<T> mask = body.shift_mask(H, W);
    for (int b = from; b < to; ++b) {
      x = body.layers[std::size_t(s)].blocks[std::size_t(b)].forward(x, H, W, mask, ctx);
      if (ctx.hook) ctx.emit("fine.image.layers." + std::to_string(s) + ".blocks." + std::to_string(b), x);
    }
    return x;
  }
  // valid: [B, L] -> [B, L, 1] of 1 / 0
  static Tensor<T> valid_weights(const Tensor<std::int64_t>& valid) {
    Tensor<T> w = Tensor<T>::empty({valid.size(0), valid.size(1), 1});
    for (std::int64_t i = 0; i < valid.numel(); ++i) w.data()[i] = valid.data()[i] ? T(1) : T(0);
    return w;
  }
};

}  // namespace fiber::models
