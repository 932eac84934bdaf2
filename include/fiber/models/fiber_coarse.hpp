#pragma once
// Coarse FIBER (FIBER_SPEC §1-2): Swin and RoBERTa with fusion in the backbone, and its three
// paths from one set of weights:
//   image_embedding / text_embedding  the unimodal (dual-encoder) passes and their ITC features;
//   fuse                              the fused pass: cross-modal token features and cls_feats,
//                                     which feed itm_logits, rank_score and mlm_logits.
//
//   models::FiberCoarse<float, models::FiberBaseCoarse384> model;
//   nn::load_state_dict<float>(model, io::open_checkpoint("fiber_pretrain.ckpt"), model.load_options());
//   NoGrad guard;
//   Var<float> e = model.image_embedding(images);         // images: [B, 3, 384, 384] -> [B, 768]
//
// Activation names given to ForwardContext::hook: "itc.image.*", "itc.text.*", "fused.image.*",
// "fused.text.*" followed by the official module path ("layers.2.blocks.14", "layer.6").
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fiber/models/coarse_config.hpp"
#include "fiber/models/coarse_heads.hpp"
#include "fiber/models/position_resize.hpp"
#include "fiber/models/roberta.hpp"
#include "fiber/models/swin.hpp"
#include "fiber/nn/state_dict.hpp"
#include "fiber/ops/join.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber::models {

// x: [B, D] -> x / |x| per row.
template <class T>
Var<T> l2_normalize(const Var<T>& x) {
  const Var<T> norm2 = sum(Var<T>(x * x), {-1}, true);
  return Var<T>(x / sqrt(norm2));
}

template <class T>
struct FusedFeatures {
  Var<T> text_feats;   // [B, L, H]   cross_modal_text_transform(text tokens)
  Var<T> image_feats;  // [B, Li, H]  cross_modal_image_transform(stage-4 tokens)
  Var<T> cls_feats;    // [B, 2H]     [text pooler ; image pooler]
};

template <class T, FiberCoarseConfig C>
struct FiberCoarse {
  static_assert(check_coarse_config<C>());
  static constexpr FiberCoarseConfig config = C;

  Var<T> temp;  // [] ITC temperature
  nn::Linear<T> cross_modal_text_transform, cross_modal_image_transform;
  nn::Linear<T> cross_modal_text_transform_itc, cross_modal_image_transform_itc;
  Swin<T> vit_model;
  Roberta<T> text_transformer;
  Pooler<T> cross_modal_image_pooler, cross_modal_text_pooler;
  Pooler<T> cross_modal_image_pooler_itc, cross_modal_text_pooler_itc;
  MlmHead<T> mlm_score;
  nn::Linear<T> itm_score;    // itm_score.fc: [2, 2H]
  Var<T> rank_output_weight;  // [1, 2H], a view of itm_score.fc.weight row 1
  Var<T> rank_output_bias;    // [1], a view of itm_score.fc.bias[1]

  FiberCoarse()
      : temp(Var<T>::parameter(Tensor<T>::full({}, T(0.07)))),
        cross_modal_text_transform(C.text.hidden, C.hidden),
        cross_modal_image_transform(C.swin.num_features(), C.hidden),
        cross_modal_text_transform_itc(C.text.hidden, C.hidden),
        cross_modal_image_transform_itc(C.swin.num_features(), C.hidden),
        vit_model(C.swin, C.text.hidden, C.first_fused_block()),
        text_transformer(C.text, text_image_dims()),
        cross_modal_image_pooler(C.hidden), cross_modal_text_pooler(C.hidden),
        cross_modal_image_pooler_itc(C.hidden), cross_modal_text_pooler_itc(C.hidden),
        mlm_score(C.hidden, C.mlm_vocab, C.mlm_layer_norm_eps), itm_score(2 * C.hidden, 2),
        rank_output_weight(itm_score.weight.value().narrow(0, 1, 1), false),
        rank_output_bias(itm_score.bias.value().narrow(0, 1, 1), false) {}

  // Width of the image tokens each text layer cross-attends to (0: none): stage 3's for the
  // layers paired with stage-3 blocks, stage 4's for the last depths[3].
  static std::vector<std::int64_t> text_image_dims() {
    std::vector<std::int64_t> dims(std::size_t(C.text.layers), 0);
    for (int i = C.first_fused_layer(); i < C.text.layers; ++i)
      dims[std::size_t(i)] = i < C.text.layers - C.swin.depths[3] ? C.swin.stage_dim(2) : C.swin.stage_dim(3);
    return dims;
  }

  // ---- unimodal passes (ITC) ---------------------------------------------------------------
  // images: [B, 3, S, S] -> L2-normalised ITC features [B, H]
  Var<T> image_embedding(const Var<T>& images, const nn::ForwardContext<T>& ctx = {}) const {
    return image_embedding_from_prefix(image_prefix(images, ctx, "itc.image."), ctx);
  }

  // The image blocks that never see text, shared by the unimodal and the fused pass: patch
  // embedding, stages 1-2, and stage 3 up to its first fused block. images: [B, 3, S, S] ->
  // [B, (S/16)^2, stage-3 width]. Its output feeds image_embedding_from_prefix and
  // fuse_from_prefix, so a training step can run it once for all its passes (the same function of
  // the same images: only the order of gradient sums changes; exact when no drop path is drawn).
  Var<T> image_prefix(const Var<T>& images, const nn::ForwardContext<T>& ctx = {}, const std::string& prefix = "fused.image.") const {
    Var<T> x = patch_embed(images, ctx, prefix);
    for (int s = 0; s < 2; ++s) x = run_stage(s, x, 0, C.swin.depths[s], ctx, prefix, true);
    return run_stage(2, x, 0, C.first_fused_block(), ctx, prefix, false);
  }

  // prefix: image_prefix output [B, N3, D3] -> L2-normalised ITC features [B, H]
  Var<T> image_embedding_from_prefix(const Var<T>& prefix, const nn::ForwardContext<T>& ctx = {}) const {
    Var<T> x = run_stage(2, prefix, C.first_fused_block(), C.swin.depths[2], ctx, "itc.image.", true);
    x = run_stage(3, x, 0, C.swin.depths[3], ctx, "itc.image.", true);
    x = vit_model.norm(x);
    ctx.emit("itc.image.norm", x);
    const Var<T> pooled = cross_modal_image_pooler_itc(mean(cross_modal_image_transform_itc(x), {1}));
    const Var<T> e = l2_normalize(pooled);
    ctx.emit("itc.image.embedding", e);
    return e;
  }

  // ids, mask: [B, L] -> L2-normalised ITC features [B, H]
  Var<T> text_embedding(const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& mask,
                        const nn::ForwardContext<T>& ctx = {}) const {
    const Tensor<T> ext = check_text(ids, mask);
    Var<T> t = text_transformer.embeddings(ids, ctx);
    ctx.emit("itc.text.embeddings", t);
    for (int i = 0; i < C.text.layers; ++i) {
      t = text_transformer.layers[std::size_t(i)](t, ext, ctx);
      ctx.emit("itc.text.layer." + std::to_string(i), t);
    }
    const Var<T> e = l2_normalize(cross_modal_text_pooler_itc(cross_modal_text_transform_itc(t).select(1, 0)));
    ctx.emit("itc.text.embedding", e);
    return e;
  }

  // ---- the fused pass (ITM, MLM) -------------------------------------------------------------
  FusedFeatures<T> fuse(const Var<T>& images, const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& mask,
                        const nn::ForwardContext<T>& ctx = {}) const {
    FIBER_CHECK(images.size(0) == ids.size(0), "fuse: ", images.size(0), " images for ", ids.size(0), " texts");
    return fuse_from_prefix(image_prefix(images, ctx), ids, mask, ctx);  // which checks the text
  }

  // The fused pass from image_prefix's output [B, N3, D3] (pair b = prefix row b, text b).
  FusedFeatures<T> fuse_from_prefix(const Var<T>& image_prefix_out, const Tensor<std::int64_t>& ids,
                                    const Tensor<std::int64_t>& mask, const nn::ForwardContext<T>& ctx = {}) const {
    const Tensor<T> ext = check_text(ids, mask);
    FIBER_CHECK(image_prefix_out.dim() == 3 && image_prefix_out.size(0) == ids.size(0), "fuse: image tokens ",
                image_prefix_out.shape(), " for ", ids.size(0), " texts");
    const std::string pi = "fused.image.", pt = "fused.text.";
    Var<T> img = image_prefix_out;
    Var<T> txt = text_transformer.embeddings(ids, ctx);
    ctx.emit(pt + "embeddings", txt);
    int layer = 0;
    for (; layer < C.first_fused_layer(); ++layer) txt = text_layer(layer, txt, ext, ctx, nullptr, true);
    // The fused pairs: the image block reads the text entering the pair, the text layer the
    // image tokens entering it; both are updated together.
    for (int s = 2; s < 4; ++s) {
      const int first = s == 2 ? C.first_fused_block() : 0;
      for (int b = first; b < C.swin.depths[s]; ++b, ++layer) {
        const TextContext<T> text{&txt, &ext};
        const Var<T> next_img = image_block(s, b, img, ctx, pi, text);
        txt = text_layer(layer, txt, ext, ctx, &img, layer != C.text.layers - 1);
        img = next_img;
      }
      if (s == 2) img = downsample(2, img, ctx, pi);
    }
    FusedFeatures<T> out;
    out.text_feats = cross_modal_text_transform(txt);
    out.image_feats = cross_modal_image_transform(img);
    ctx.emit("fused.text_feats", out.text_feats);
    ctx.emit("fused.image_feats", out.image_feats);
    const Var<T> cls_text = cross_modal_text_pooler(out.text_feats.select(1, 0));
    const Var<T> cls_image = cross_modal_image_pooler(mean(out.image_feats, {1}));
    out.cls_feats = concat({cls_text, cls_image}, -1);
    ctx.emit("fused.cls_feats", out.cls_feats);
    return out;
  }

  // cls_feats: [B, 2H] -> [B, 2] (no match, match)
  Var<T> itm_logits(const Var<T>& cls_feats) const { return itm_score(cls_feats); }
  // cls_feats: [B, 2H] -> [B, 1], the ITM retrieval score (the match row of itm_score)
  Var<T> rank_score(const Var<T>& cls_feats) const { return linear(cls_feats, rank_output_weight, rank_output_bias); }
  // text_feats: [B, L, H] -> [B, L, V]
  Var<T> mlm_logits(const Var<T>& text_feats) const { return mlm_score(text_feats); }

  // ---- weights -------------------------------------------------------------------------------
  // The official module order: temp, then the submodules as FIBERTransformerSS assigns them.
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    nn::visit_parameter(f, prefix, "temp", temp);
    cross_modal_text_transform.visit(prefix + "cross_modal_text_transform.", f);
    cross_modal_image_transform.visit(prefix + "cross_modal_image_transform.", f);
    cross_modal_text_transform_itc.visit(prefix + "cross_modal_text_transform_itc.", f);
    cross_modal_image_transform_itc.visit(prefix + "cross_modal_image_transform_itc.", f);
    vit_model.visit(prefix + "vit_model.", f);
    text_transformer.visit(prefix + "text_transformer.", f);
    cross_modal_image_pooler.visit(prefix + "cross_modal_image_pooler.", f);
    cross_modal_text_pooler.visit(prefix + "cross_modal_text_pooler.", f);
    cross_modal_image_pooler_itc.visit(prefix + "cross_modal_image_pooler_itc.", f);
    cross_modal_text_pooler_itc.visit(prefix + "cross_modal_text_pooler_itc.", f);
    mlm_score.visit(prefix + "mlm_score.", f);
    itm_score.visit(prefix + "itm_score.fc.", f);
    nn::visit_tied(f, prefix, "rank_output.weight", rank_output_weight);
    nn::visit_tied(f, prefix, "rank_output.bias", rank_output_bias);
  }

  // Keys of official coarse checkpoints that are not weights of this model: the ITC queues
  // (gigabytes in a real .ckpt; never read).
  static bool is_queue_key(std::string_view key) {
    return key == "image_queue" || key == "text_queue" || key == "image_input_queue" || key == "text_input_queue" ||
           key == "text_input_mask_queue" || key == "queue_ptr" || key == "queue_total";
  }
  static nn::LoadOptions<T> load_options(bool strict = true) {
    nn::LoadOptions<T> o;
    o.strict = strict;
    o.ignore = is_queue_key;
    // A checkpoint of another resolution (384 <-> 576): its relative-position tables are resized
    // bicubically, as the official swin_adapt_position_encoding.
    o.adapt = relative_position_table_adapter<T>();
    return o;
  }

  // ---- pieces, public for block-level tests ----------------------------------------------------
  Var<T> patch_embed(const Var<T>& images, const nn::ForwardContext<T>& ctx, const std::string& prefix) const {
    const int S = C.swin.image_size;
    FIBER_CHECK(images.dim() == 4 && images.size(1) == C.swin.in_chans && images.size(2) == S && images.size(3) == S,
                "FIBER coarse: images must be [B, ", C.swin.in_chans, ", ", S, ", ", S, "] for this configuration, got ",
                images.shape());
    Var<T> x = vit_model.patch_embed(images);
    ctx.emit(prefix + "patch_embed", x);
    return x;
  }
  Var<T> image_block(int s, int b, const Var<T>& x, const nn::ForwardContext<T>& ctx, const std::string& prefix,
                     const TextContext<T>& text = {}) const {
    Var<T> y = vit_model.layers[std::size_t(s)].blocks[std::size_t(b)](x, ctx, text);
    if (ctx.hook) ctx.emit(prefix + "layers." + std::to_string(s) + ".blocks." + std::to_string(b), y);
    return y;
  }
  Var<T> downsample(int s, const Var<T>& x, const nn::ForwardContext<T>& ctx, const std::string& prefix) const {
    Var<T> y = vit_model.layers[std::size_t(s)].downsample(x);
    if (ctx.hook) ctx.emit(prefix + "layers." + std::to_string(s) + ".downsample", y);
    return y;
  }
  // Blocks [from, to) of stage s, then its downsample when `with_downsample` and the stage has one.
  Var<T> run_stage(int s, Var<T> x, int from, int to, const nn::ForwardContext<T>& ctx, const std::string& prefix,
                   bool with_downsample) const {
    for (int b = from; b < to; ++b) x = image_block(s, b, x, ctx, prefix);
    if (with_downsample && vit_model.layers[std::size_t(s)].has_downsample) x = downsample(s, x, ctx, prefix);
    return x;
  }
  Var<T> text_layer(int i, const Var<T>& t, const Tensor<T>& ext, const nn::ForwardContext<T>& ctx, const Var<T>* image,
                    bool last_norm) const {
    Var<T> y = text_transformer.layers[std::size_t(i)](t, ext, ctx, image, last_norm);
    if (ctx.hook) ctx.emit("fused.text.layer." + std::to_string(i), y);
    return y;
  }

  // Checks ids and mask and makes the additive mask [B, 1, 1, L].
  static Tensor<T> check_text(const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& mask) {
    FIBER_CHECK(ids.dim() == 2 && ids.size(1) >= 1, "FIBER coarse: token ids must be [B, L] with L >= 1, got ", ids.shape());
    FIBER_CHECK(mask.shape() == ids.shape(), "FIBER coarse: mask ", mask.shape(), " does not match ids ", ids.shape());
    FIBER_CHECK(ids.size(1) <= C.text.max_positions - C.text.pad_token_id - 1, "FIBER coarse: ", ids.size(1),
                " tokens; this model has positions for at most ", C.text.max_positions - C.text.pad_token_id - 1);
    return extended_attention_mask<T>(mask);
  }
};

}  // namespace fiber::models
