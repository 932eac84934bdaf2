#pragma once
// Fine-grained FIBER (FIBER_SPEC §3; the official GeneralizedVLRCNN with fusion in the backbone and
// the VLDyHead as its RPN): fusion backbone -> FPN -> DyHead with the grounding head.
//
//   models::FiberFine<float, models::FiberBaseFine> model;
//   nn::load_state_dict<float>(model, io::open_checkpoint("fiber_coco.pth"), model.load_options());
//   NoGrad guard;
//   const auto text = model.text_prefix(ids, valid);     // once per prompt: ids, valid [1, 256]
//   const auto out = model(images, text);                // images [1, 3, H, W], any H, W
//   // out.head: per level box regression, centerness and token logits (fine_head_io.hpp turns
//   // them into detections)
//
// Keys: fusion_backbone.* (fusion_backbone.hpp), rpn.head.* (dyhead.hpp) and the anchor buffers
// rpn.anchor_generator.cell_anchors.0..4 (derived: level_anchors computes them).
#include <string>
#include <vector>

#include "fiber/models/dyhead.hpp"
#include "fiber/models/fusion_backbone.hpp"
#include "fiber/models/position_resize.hpp"
#include "fiber/nn/state_dict.hpp"

namespace fiber::models {

template <class T>
struct FineOutputs {
  FusionOutputs<T> backbone;
  std::vector<Var<T>> pyramid;  // P3..P7: [B, channels, H_l, W_l]
  HeadOutputs<T> head;
};

template <class T, FiberFineConfig C>
struct FiberFine {
  static constexpr FiberFineConfig config = C;
  FusionBackbone<T, C> fusion_backbone;
  DyHead<T, C.head> head;  // rpn.head

  // What does not depend on the image: the text up to the fusion point. ids, valid: [B, L].
  FineTextPrefix<T> text_prefix(const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& valid,
                                const nn::ForwardContext<T>& ctx = {}) const {
    return fusion_backbone.text_prefix(ids, valid, ctx);
  }

  // images: [B, 3, H, W] (zero-padded here to a multiple of size_divisibility) with B text rows.
  FineOutputs<T> operator()(const Var<T>& images, const FineTextPrefix<T>& text, const nn::ForwardContext<T>& ctx = {}) const {
    FineOutputs<T> out;
    out.backbone = fusion_backbone(images, text, ctx);
    out.pyramid = fusion_backbone.fpn(out.backbone.c);
    out.head = head(out.pyramid, out.backbone.text_embedded);
    return out;
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    fusion_backbone.visit(prefix + "fusion_backbone.", f);
    head.visit(prefix + "rpn.head.", f);
    for (int l = 0; l < C.head.levels; ++l)
      nn::visit_derived<T>(f, prefix, "rpn.anchor_generator.cell_anchors." + std::to_string(l));
  }

  // Strict by default. Relative-position tables of another window are resized as for the coarse
  // model (the released fine-grained checkpoints all use window 12).
  static nn::LoadOptions<T> load_options(bool strict = true) {
    nn::LoadOptions<T> o;
    o.strict = strict;
    o.adapt = relative_position_table_adapter<T>();
    return o;
  }
};

}  // namespace fiber::models
