#pragma once
// Compile-time configurations of the fine-grained FIBER model (FIBER_SPEC §3): the fusion
// backbone, the FPN over its C3–C5 and the DyHead with its grounding head. Layer counts stay
// runtime loops.
#include <array>
#include <cmath>
#include <cstdint>

#include "fiber/models/coarse_config.hpp"

namespace fiber::models {

// FPN (SWINT-FPN-RETINANET): laterals and outputs for C3, C4, C5, then P6 = conv s2 on P5 and
// P7 = conv s2 on relu(P6).
struct FpnConfig {
  std::array<int, 3> in_channels{256, 512, 1024};  // C3, C4, C5 (stages 2-4 of Swin-B)
  int out_channels = 256;
};

// VLDyHead with FIBER's settings (USE_GN, USE_DYRELU, USE_DFCONV, USE_DYFUSE,
// USE_DOT_PRODUCT_TOKEN_LOSS, CLAMP_DOT_PRODUCT; no early fusion in the head).
struct DyHeadConfig {
  int channels = 256;     // MODEL.DYHEAD.CHANNELS (= the FPN's out_channels)
  int num_convs = 6;      // DyConv blocks
  int gn_groups = 16;     // MODEL.GROUP_NORM.NUM_GROUPS
  int lang_dim = 768;     // the text backbone's width
  int num_classes = 80;   // cls_logits channels (NUM_CLASSES − 1): loaded, never used by grounding
  int levels = 5;         // P3–P7: one Scale each
  double prior_prob = 0.01;
  double log_scale = 0.0;
  double dot_product_clamp = 50000;

  constexpr int dyrelu_squeeze() const { return channels / 4; }
  // bias0's initial value: −log((1 − p) / p), the focal-loss prior.
  double bias0_init() const { return -std::log((1 - prior_prob) / prior_prob); }
};

// The whole fine-grained model. The backbone is the coarse one's Swin and RoBERTa computed as
// fusion_swin_transformer_v2/v3: any input size (padded to size_divisibility, then per block to the
// window), a fixed window, shifts in every odd block, stage norms norm1..3 and no final norm.
struct FiberFineConfig {
  SwinConfig swin{.drop_path_rate = 0.4};  // image_size unused: the window is fixed below
  int window = 12;
  RobertaConfig text{};
  int num_fuse_block = 6;         // fused (image block, text layer) pairs: the top of stage 3 and stage 4
  bool i2t_query_norm = false;    // norm_i2t_i on the i2t queries: v3 (refexp) has it, v2 (detection) not
  int size_divisibility = 32;     // DATALOADER.SIZE_DIVISIBILITY: images are zero-padded to a multiple
  int max_query_len = 256;        // MODEL.LANGUAGE_BACKBONE.MAX_QUERY_LEN: prompts are padded to it
  FpnConfig fpn{};
  DyHeadConfig head{};

  // The official fusion schedule (FusionSwinTransformer.forward): text layers below
  // first_fused_layer() run alone, then stage-3 blocks from first_fused_block() and all of stage 4
  // pair with the remaining text layers in order.
  constexpr int fused_in_stage3() const { return num_fuse_block - swin.depths[3]; }
  constexpr int first_fused_block() const { return swin.depths[2] - fused_in_stage3(); }
  constexpr int first_fused_layer() const { return text.layers - num_fuse_block; }
};

// FIBER-B fine-grained, v2 (COCO / LVIS / Objects365 / Flickr30k detection and grounding configs).
inline constexpr FiberFineConfig FiberBaseFine{};

// FIBER-B fine-grained, v3 (the referring-expression configs: norm_i2t_i on the i2t queries).
inline constexpr FiberFineConfig FiberBaseFineV3 = [] {
  FiberFineConfig c;
  c.i2t_query_norm = true;
  return c;
}();

// The tiny model of the fine-grained parity fixtures (tests/reference/make_fusion_backbone.py): the
// official schedule (stage-3 depth 18, 12 text layers) at small widths; window 7, so every stage of
// a 96 x 160 input pads its windows.
inline constexpr FiberFineConfig FiberTinyFine{
    .swin = {.embed_dim = 8, .depths = {2, 2, 18, 2}, .num_heads = {1, 1, 2, 4}, .drop_path_rate = 0.0},
    .window = 7,
    .text = {.vocab_size = 1000, .hidden = 16, .heads = 2, .layers = 12, .intermediate = 64, .max_positions = 42},
    .max_query_len = 16,
    .fpn = {{16, 32, 64}, 16},
    .head = {.channels = 16, .num_convs = 1, .gn_groups = 16, .lang_dim = 16, .num_classes = 5},
};

// The same with fusion v3 (norm_i2t_i).
inline constexpr FiberFineConfig FiberTinyFineV3 = [] {
  FiberFineConfig c = FiberTinyFine;
  c.i2t_query_norm = true;
  return c;
}();

// The fine-grained counterpart of FiberDemoCoarse (`fiber init fine --config demo`, `fiber train
// fine --config demo`, examples/ground_phrase): the same Swin (window 2, so the demo coarse tables
// load unchanged) and text widths, the shapes world's 342-token vocabulary, prompts of 32 tokens, a
// 64-channel FPN and a DyHead of two DyConv blocks. No drop path or dropout.
inline constexpr FiberFineConfig FiberDemoFine{
    .swin = {.embed_dim = 32, .depths = {1, 1, 3, 1}, .num_heads = {1, 2, 4, 8}, .drop_path_rate = 0.0},
    .window = 2,
    .text = {.vocab_size = 342, .hidden = 64, .heads = 2, .layers = 4, .intermediate = 256, .max_positions = 42,
             .dropout = 0.0},
    .num_fuse_block = 2,
    .max_query_len = 32,
    .fpn = {{64, 128, 256}, 64},
    .head = {.channels = 64, .num_convs = 2, .gn_groups = 16, .lang_dim = 64, .num_classes = 5},
};

template <FiberFineConfig C>
constexpr bool check_fine_config() {
  static_assert(C.window >= 1 && C.size_divisibility % 32 == 0,
                "FIBER fine: the window must be positive and the size divisibility a multiple of 32");
  static_assert(C.swin.embed_dim % C.swin.num_heads[0] == 0 && C.swin.stage_dim(1) % C.swin.num_heads[1] == 0 &&
                    C.swin.stage_dim(2) % C.swin.num_heads[2] == 0 && C.swin.stage_dim(3) % C.swin.num_heads[3] == 0,
                "FIBER fine: Swin heads must divide each stage's width");
  static_assert(C.text.hidden % C.text.heads == 0, "FIBER fine: text heads must divide the text width");
  static_assert(C.num_fuse_block >= C.swin.depths[3] && C.fused_in_stage3() <= C.swin.depths[2] &&
                    C.num_fuse_block <= C.text.layers,
                "FIBER fine: the fused blocks must be all of stage 4 and the top of stage 3, one text layer each");
  static_assert(C.fpn.in_channels[0] == C.swin.stage_dim(1) && C.fpn.in_channels[1] == C.swin.stage_dim(2) &&
                    C.fpn.in_channels[2] == C.swin.stage_dim(3),
                "FIBER fine: the FPN's inputs are Swin stages 2-4");
  static_assert(C.head.channels == C.fpn.out_channels && C.head.lang_dim == C.text.hidden && C.head.levels == 5,
                "FIBER fine: the DyHead reads the FPN's five levels and the text backbone's tokens");
  static_assert(C.max_query_len <= C.text.max_positions - C.text.pad_token_id - 1,
                "FIBER fine: the text backbone has no positions for max_query_len tokens");
  return true;
}

}  // namespace fiber::models
