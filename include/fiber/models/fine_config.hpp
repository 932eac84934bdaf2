#pragma once
// Compile-time configurations of the fine-grained FIBER head (FIBER_SPEC §3): the FPN over the
// fusion backbone's C3–C5 and the DyHead with its grounding head. Layer counts stay runtime loops.
#include <array>
#include <cmath>
#include <cstdint>

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

}  // namespace fiber::models
