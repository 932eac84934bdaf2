#pragma once
// Compile-time configurations of the coarse FIBER model (FIBER_SPEC §1). Models are templates
// over a FiberCoarseConfig value; layer counts stay runtime loops inside them, so a host program
// instantiates one model type per variant and pays for no other.
#include <array>
#include <cstdint>

namespace fiber::models {

// The Swin image backbone (the official coarse variant: downsampling at the end of each stage).
struct SwinConfig {
  int image_size = 384;  // square input; the window is image_size / 32
  int patch_size = 4;
  int in_chans = 3;
  int embed_dim = 128;
  std::array<int, 4> depths{2, 2, 18, 2};
  std::array<int, 4> num_heads{4, 8, 16, 32};
  int mlp_ratio = 4;
  double drop_path_rate = 0.1;  // linear over all blocks, as the official constructor default

  constexpr int window() const { return image_size / 32; }
  constexpr int grid() const { return image_size / patch_size; }                 // stage-1 map side
  constexpr int stage_dim(int s) const { return embed_dim << s; }
  constexpr int stage_side(int s) const { return grid() >> s; }                  // map side of stage s
  constexpr int total_depth() const { return depths[0] + depths[1] + depths[2] + depths[3]; }
  constexpr int num_features() const { return stage_dim(3); }
};

// The RoBERTa text backbone (post-LN).
struct RobertaConfig {
  int vocab_size = 50265;
  int hidden = 768;
  int heads = 12;
  int layers = 12;
  int intermediate = 3072;
  int max_positions = 514;
  int type_vocab_size = 1;
  int pad_token_id = 1;
  double layer_norm_eps = 1e-5;
  double dropout = 0.1;  // hidden and attention-probability dropout (coarse pre-training config)
};

// The whole coarse model: backbones, fusion and heads.
struct FiberCoarseConfig {
  SwinConfig swin;
  RobertaConfig text;
  int num_fuse_block = 6;          // fused (image block, text layer) pairs at the top
  int hidden = 768;                // width of the cross-modal transforms and poolers
  int mlm_vocab = 50265;           // rows of the MLM decoder
  double mlm_layer_norm_eps = 1e-12;  // BertPredictionHeadTransform's LayerNorm (RobertaConfig default)
  int max_text_len = 40;

  // Fusion schedule (the official infer(): the last num_fuse_block text layers pair with the last
  // num_fuse_block Swin blocks, which are the top of stage 3 and all of stage 4).
  constexpr int fused_in_stage3() const { return num_fuse_block - swin.depths[3]; }
  constexpr int first_fused_block() const { return swin.depths[2] - fused_in_stage3(); }  // in stage 3
  constexpr int first_fused_layer() const { return text.layers - num_fuse_block; }
};

// FIBER-B at 384 x 384 (the coarse pre-training resolution).
inline constexpr FiberCoarseConfig FiberBaseCoarse384{};

// FIBER-B at 576 x 576 (VQA, ITC retrieval and captioning fine-tunes: window 18).
inline constexpr FiberCoarseConfig FiberBaseCoarse576 = [] {
  FiberCoarseConfig c;
  c.swin.image_size = 576;
  return c;
}();

// The tiny model of the parity fixtures (tests/data/coarse): the official schedule (12 text layers,
// stage-3 depth 18) at small widths (Swin 8..64, text 16), 128 x 128 images (window 4).
inline constexpr FiberCoarseConfig FiberTinyCoarse{
    .swin = {.image_size = 128, .embed_dim = 8, .depths = {2, 2, 18, 2}, .num_heads = {1, 1, 2, 4}},
    .text = {.vocab_size = 1000, .hidden = 16, .heads = 2, .layers = 12, .intermediate = 64, .max_positions = 42},
    .num_fuse_block = 6,
    .hidden = 16,
    .mlm_vocab = 1000,
};

// The demo model (examples/train_coarse, `fiber train coarse --config demo`): small enough to train
// from scratch on 2 CPU cores in minutes, on 64 x 64 images (window 2) of the shapes world, whose
// tokenizer has 342 tokens (train/shapes_vocab.hpp: shapes_world_vocab_size). Two fused pairs (the
// top of stage 3 and stage 4), 4 text layers of width 64. No dropout or drop path: the demo trains
// for minutes, not epochs.
inline constexpr FiberCoarseConfig FiberDemoCoarse{
    .swin = {.image_size = 64, .embed_dim = 32, .depths = {1, 1, 3, 1}, .num_heads = {1, 2, 4, 8}, .drop_path_rate = 0.0},
    .text = {.vocab_size = 342, .hidden = 64, .heads = 2, .layers = 4, .intermediate = 256, .max_positions = 42,
             .dropout = 0.0},
    .num_fuse_block = 2,
    .hidden = 64,
    .mlm_vocab = 342,
};

// Invariants every configuration must satisfy, checked where a model is instantiated.
template <FiberCoarseConfig C>
constexpr bool check_coarse_config() {
  static_assert(C.swin.image_size % 32 == 0, "FIBER coarse: the image size must be a multiple of 32 (window = size / 32)");
  static_assert(C.swin.window() >= 1, "FIBER coarse: the window must be at least 1");
  static_assert(C.swin.stage_side(3) % C.swin.window() == 0 || C.swin.stage_side(3) <= C.swin.window(),
                "FIBER coarse: the window must divide every stage's map");
  static_assert(C.swin.embed_dim % C.swin.num_heads[0] == 0 && C.swin.stage_dim(1) % C.swin.num_heads[1] == 0 &&
                    C.swin.stage_dim(2) % C.swin.num_heads[2] == 0 && C.swin.stage_dim(3) % C.swin.num_heads[3] == 0,
                "FIBER coarse: Swin heads must divide each stage's width");
  static_assert(C.text.hidden % C.text.heads == 0, "FIBER coarse: text heads must divide the text width");
  static_assert(C.num_fuse_block >= C.swin.depths[3] && C.fused_in_stage3() <= C.swin.depths[2],
                "FIBER coarse: the fused blocks must be all of stage 4 and the top of stage 3");
  static_assert(C.num_fuse_block <= C.text.layers, "FIBER coarse: more fused blocks than text layers");
  static_assert(C.hidden == C.text.hidden, "FIBER coarse: the official model uses the text width as hidden_size");
  return true;
}

}  // namespace fiber::models
