#pragma once
// The Swin image backbone of coarse FIBER (FIBER_SPEC §1), module by module, with the
// image-to-text cross-attention inside the window attention of the fused blocks. Official names:
// patch_embed.{proj,norm}, layers.S.blocks.B.{norm1,attn,norm2,mlp.fc1,mlp.fc2},
// layers.S.downsample.{norm,reduction}, norm.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fiber/models/attention.hpp"
#include "fiber/models/coarse_config.hpp"
#include "fiber/models/regularize.hpp"
#include "fiber/models/window.hpp"
#include "fiber/nn/context.hpp"
#include "fiber/nn/layer_norm.hpp"
#include "fiber/nn/linear.hpp"
#include "fiber/ops/conv.hpp"
#include "fiber/ops/index.hpp"
#include "fiber/ops/linear_gelu.hpp"
#include "fiber/ops/pad.hpp"
#include "fiber/ops/roll.hpp"

namespace fiber::models {

// The text a fused image block attends to.
template <class T>
struct TextContext {
  const Var<T>* tokens = nullptr;     // [B, Lt, Dt]: the text state entering the fused pair
  const Tensor<T>* mask = nullptr;    // [B, 1, 1, Lt]: 0 for tokens, -10000 for padding
};

// Conv patchify + LayerNorm. image: [B, 3, S, S] -> [B, (S/p)^2, C]
template <class T>
struct PatchEmbed {
  Var<T> proj_weight, proj_bias;  // [C, 3, p, p], [C]
  nn::LayerNorm<T> norm;
  int patch = 4;

  PatchEmbed() = default;
  explicit PatchEmbed(const SwinConfig& c)
      : proj_weight(nn::make_parameter<T>({c.embed_dim, c.in_chans, c.patch_size, c.patch_size})),
        proj_bias(nn::make_parameter<T>({c.embed_dim})), norm(c.embed_dim), patch(c.patch_size) {}

  Var<T> operator()(const Var<T>& image) const {
    Conv2dOptions opt;
    opt.stride = {patch, patch};
    const Var<T> maps = conv2d(image, proj_weight, proj_bias, opt);  // [B, C, S/p, S/p]
    const std::int64_t B = maps.size(0), C = maps.size(1);
    return norm(maps.reshape({B, C, maps.size(2) * maps.size(3)}).transpose(1, 2));
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    nn::visit_parameter(f, prefix, "proj.weight", proj_weight);
    nn::visit_parameter(f, prefix, "proj.bias", proj_bias);
    norm.visit(prefix + "norm.", f);
  }
};

// Window attention with relative position bias; in fused blocks also the image-to-text
// cross-attention (qkv_i2t, qkv_text_i2t, proj_i2t, alpha_i2t, and norm_i2t_i on the queries
// where the variant has it: coarse and fine-grained v3 do, fine-grained v2 does not).
template <class T>
struct WindowAttention {
  std::int64_t dim = 0, heads = 0, window = 0;
  Var<T> relative_position_bias_table;  // [(2w-1)^2, heads]
  Tensor<std::int64_t> relative_index;  // [N*N] (derived buffer relative_position_index)
  nn::Linear<T> qkv, proj;
  bool fused = false, query_norm = true;
  nn::Linear<T> qkv_text_i2t, qkv_i2t, proj_i2t;
  Var<T> alpha_i2t;  // [1]
  nn::LayerNorm<T> norm_i2t_i;

  WindowAttention() = default;
  WindowAttention(std::int64_t d, std::int64_t h, std::int64_t w, std::int64_t text_dim, bool i2t_query_norm = true)
      : dim(d), heads(h), window(w),
        relative_position_bias_table(nn::make_parameter<T>({(2 * w - 1) * (2 * w - 1), h})),
        relative_index(relative_position_index(w)), qkv(d, 3 * d), proj(d, d), fused(text_dim > 0),
        query_norm(i2t_query_norm) {
    if (fused) {
      qkv_text_i2t = nn::Linear<T>(text_dim, 2 * d);
      qkv_i2t = nn::Linear<T>(d, d);
      proj_i2t = nn::Linear<T>(d, d);
      alpha_i2t = nn::make_parameter<T>({1});
      if (query_norm) norm_i2t_i = nn::LayerNorm<T>(d);
    }
  }

  // [heads, N, N]: the bias table gathered by relative position.
  Var<T> relative_bias() const {
    const std::int64_t N = window * window;
    return index_select(relative_position_bias_table, 0, relative_index).reshape({N, N, heads}).permute({2, 0, 1});
  }

  // windows: [B * nW, N, C]; mask: [nW, N, N] or undefined -> [B * nW, N, C]
  Var<T> operator()(const Var<T>& windows, const Tensor<T>& mask, const TextContext<T>& text, std::int64_t batch,
                    const nn::ForwardContext<T>& ctx) const {
    const std::int64_t BW = windows.size(0), N = windows.size(1), C = windows.size(2), d = C / heads;
    const std::int64_t nW = BW / batch;
    // qkv: [B, nW, N, 3, heads, d] -> q, k, v: [B, nW, heads, N, d]
    const Var<T> qkv5 = qkv(windows).reshape({batch, nW, N, 3, heads, d}).permute({3, 0, 1, 4, 2, 5});
    const Var<T> q = qkv5.select(0, 0), k = qkv5.select(0, 1), v = qkv5.select(0, 2);
    const Tensor<T> mask5 = mask.defined() ? mask.reshape({nW, 1, N, N}) : Tensor<T>();
    Var<T> out = attention(q, k, v, 1.0 / std::sqrt(double(d)), relative_bias(), mask5);  // [B, nW, h, N, d]
    out = proj(out.permute({0, 1, 3, 2, 4}).reshape({BW, N, C}));
    if (!fused || !text.tokens) return out;
    // Image-to-text: every image token attends to all text tokens of its image. The step is
    // per token, so it runs on the image's tokens in window order, [B, nW*N, C], without
    // repeating the text keys per window as the official code does.
    const Var<T>& y = *text.tokens;
    const std::int64_t Lt = y.size(1);
    const Var<T> kv = qkv_text_i2t(y).reshape({batch, Lt, 2, heads, d}).permute({2, 0, 3, 1, 4});  // [2, B, h, Lt, d]
    const Var<T> tokens = out.reshape({batch, nW * N, C});
    const Var<T> qi = split_heads(qkv_i2t(query_norm ? norm_i2t_i(tokens) : tokens), heads);  // [B, h, nW*N, d]
    const Var<T> c = attention(qi, kv.select(0, 0), kv.select(0, 1), 1.0 / std::sqrt(double(d)), Var<T>(),
                               text.mask ? *text.mask : Tensor<T>());
    const Var<T> cross = proj_i2t(merge_heads(c)).reshape({BW, N, C});
    return Var<T>(out + alpha_i2t * cross);
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    // The official state-dict order: own parameters, own buffers, then submodules.
    nn::visit_parameter(f, prefix, "relative_position_bias_table", relative_position_bias_table);
    if (fused) nn::visit_parameter(f, prefix, "alpha_i2t", alpha_i2t);
    nn::visit_derived<T>(f, prefix, "relative_position_index");
    qkv.visit(prefix + "qkv.", f);
    proj.visit(prefix + "proj.", f);
    if (fused) {
      qkv_text_i2t.visit(prefix + "qkv_text_i2t.", f);
      qkv_i2t.visit(prefix + "qkv_i2t.", f);
      proj_i2t.visit(prefix + "proj_i2t.", f);
      if (query_norm) norm_i2t_i.visit(prefix + "norm_i2t_i.", f);
    }
  }
};

// A Swin block. Two geometries:
//   coarse      a square map of a fixed side, no larger window than the map and no shift when the
//               map is one window (the official coarse rule); the shift mask is built once;
//   any size    (fine-grained) an H x W map known per call, zero-padded after norm1 to a multiple of
//               the window, the padding NOT masked (as the official); odd blocks always shift, the
//               caller passes the mask of the padded map (shifted_window_mask).
template <class T>
struct SwinBlock {
  std::int64_t side = 0, window = 0, shift = 0;  // map side (0: any size), window, cyclic shift (0: none)
  double drop_path = 0;
  nn::LayerNorm<T> norm1, norm2;
  WindowAttention<T> attn;
  nn::Linear<T> fc1, fc2;  // mlp.fc1, mlp.fc2
  Tensor<T> attn_mask;     // [nW, N, N] when shifted on a fixed map (derived buffer attn_mask)

  SwinBlock() = default;
  SwinBlock(std::int64_t dim, std::int64_t heads, std::int64_t map_side, std::int64_t win, bool shifted, int mlp_ratio,
            double drop_path_rate, std::int64_t text_dim, bool i2t_query_norm = true)
      : side(map_side), window(win), shift(shifted ? win / 2 : 0), drop_path(drop_path_rate), norm1(dim),
        norm2(dim), fc1(dim, dim * mlp_ratio), fc2(dim * mlp_ratio, dim) {
    // A map no larger than the window is one window, never shifted (the official coarse rule).
    if (side > 0 && side <= window) {
      shift = 0;
      window = side;
    }
    attn = WindowAttention<T>(dim, heads, window, text_dim, i2t_query_norm);
    if (side > 0 && shift > 0) attn_mask = shifted_window_mask<T>(side, side, window, shift);
  }

  // x: [B, L, C] -> [B, L, C] on the block's fixed map.
  Var<T> operator()(const Var<T>& x, const nn::ForwardContext<T>& ctx, const TextContext<T>& text = {}) const {
    FIBER_CHECK(side > 0, "Swin block: built for any map size; call forward(x, H, W, mask, ...)");
    return forward(x, side, side, attn_mask, ctx, text);
  }

  // x: [B, H*W, C] -> [B, H*W, C]; mask: the shift mask of the padded map when shift > 0.
  Var<T> forward(const Var<T>& x, std::int64_t H, std::int64_t W, const Tensor<T>& mask,
                 const nn::ForwardContext<T>& ctx, const TextContext<T>& text = {}) const {
    const std::int64_t B = x.size(0), L = x.size(1), C = x.size(2);
    FIBER_CHECK(L == H * W, "Swin block: ", L, " tokens for a ", H, "x", W, " map");
    const std::int64_t Hp = round_up(H, window), Wp = round_up(W, window);
    FIBER_CHECK(shift == 0 || (mask.dim() == 3 && mask.size(0) == (Hp / window) * (Wp / window)),
                "Swin block: the shift mask must be [", (Hp / window) * (Wp / window), ", N, N] for a ", Hp, "x", Wp,
                " padded map, got ", mask.shape());
    Var<T> h = norm1(x).reshape({B, H, W, C});
    if (Hp != H || Wp != W) h = pad(h, {0, 0, 0, Wp - W, 0, Hp - H});  // zeros after norm1, not masked
    if (shift > 0) h = roll(h, {-shift, -shift}, {1, 2});
    Var<T> windows = attn(window_partition(h, window), shift > 0 ? mask : Tensor<T>(), text, B, ctx);
    h = window_reverse(windows, window, Hp, Wp);
    if (shift > 0) h = roll(h, {shift, shift}, {1, 2});
    if (Hp != H || Wp != W) h = h.narrow(1, 0, H).narrow(2, 0, W);
    const Var<T> y = residual_add(x, h.reshape({B, L, C}), drop_path, ctx);
    return residual_add(y, fc2(linear_gelu(norm2(y), fc1.weight, fc1.bias)), drop_path, ctx);
  }

  static std::int64_t round_up(std::int64_t n, std::int64_t m) { return (n + m - 1) / m * m; }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    if (side > 0 && shift > 0) nn::visit_derived<T>(f, prefix, "attn_mask");
    norm1.visit(prefix + "norm1.", f);
    attn.visit(prefix + "attn.", f);
    norm2.visit(prefix + "norm2.", f);
    fc1.visit(prefix + "mlp.fc1.", f);
    fc2.visit(prefix + "mlp.fc2.", f);
  }
};

// 2x2 neighbourhood concatenation + LayerNorm + Linear(4C -> 2C, no bias).
template <class T>
struct PatchMerging {
  std::int64_t side = 0;
  nn::LayerNorm<T> norm;
  nn::Linear<T> reduction;

  PatchMerging() = default;
  PatchMerging(std::int64_t dim, std::int64_t map_side) : side(map_side), norm(4 * dim), reduction(4 * dim, 2 * dim, false) {}

  // x: [B, side^2, C] -> [B, (side/2)^2, 2C]
  Var<T> operator()(const Var<T>& x) const { return forward(x, side, side); }

  // x: [B, H*W, C] -> [B, (H/2)*(W/2), 2C]; H and W even (the official asserts it before its
  // padding branch, so odd maps never run there; the fine-grained input is a multiple of 32).
  Var<T> forward(const Var<T>& x, std::int64_t H, std::int64_t W) const {
    const std::int64_t B = x.size(0), C = x.size(2), h = H / 2, w = W / 2;
    FIBER_CHECK(x.size(1) == H * W && H % 2 == 0 && W % 2 == 0, "patch merging: ", x.size(1), " tokens for a ", H, "x",
                W, " map (both sides must be even)");
    // Channels in the official order x0 (0,0), x1 (1,0), x2 (0,1), x3 (1,1): (column offset, row offset).
    const Var<T> grouped = x.reshape({B, h, 2, w, 2, C}).permute({0, 1, 3, 4, 2, 5}).reshape({B, h * w, 4 * C});
    return reduction(norm(grouped));
  }
  template <class F>
  void visit(const std::string& prefix, F&& f) {
    norm.visit(prefix + "norm.", f);
    reduction.visit(prefix + "reduction.", f);
  }
};

template <class T>
struct SwinStage {
  std::vector<SwinBlock<T>> blocks;
  bool has_downsample = false;
  PatchMerging<T> downsample;

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    for (std::size_t b = 0; b < blocks.size(); ++b) blocks[b].visit(prefix + "blocks." + std::to_string(b) + ".", f);
    if (has_downsample) downsample.visit(prefix + "downsample.", f);
  }
};

// The blocks and patch mergings of Swin's four stages, drop path rising linearly over all blocks.
// fixed_map: coarse blocks on the configuration's square maps; otherwise blocks for any map size
// (the fine-grained backbone). Blocks from `fused_from` in stage 3 and all of stage 4 carry the
// image-to-text attention over text of width text_dim.
template <class T>
std::vector<SwinStage<T>> make_swin_stages(const SwinConfig& c, std::int64_t window, bool fixed_map, std::int64_t text_dim,
                                           int fused_from, bool i2t_query_norm) {
  std::vector<SwinStage<T>> stages;
  const int total = c.total_depth();
  int global = 0;
  for (int s = 0; s < 4; ++s) {
    SwinStage<T> stage;
    const std::int64_t side = fixed_map ? c.stage_side(s) : 0;
    for (int b = 0; b < c.depths[s]; ++b, ++global) {
      const bool fused = (s == 2 && b >= fused_from) || s == 3;
      const double dpr = total > 1 ? c.drop_path_rate * global / (total - 1) : 0.0;
      stage.blocks.emplace_back(c.stage_dim(s), c.num_heads[s], side, window, b % 2 == 1, c.mlp_ratio, dpr,
                                fused ? text_dim : 0, i2t_query_norm);
    }
    stage.has_downsample = s < 3;
    if (stage.has_downsample) stage.downsample = PatchMerging<T>(c.stage_dim(s), side);
    stages.push_back(std::move(stage));
  }
  return stages;
}

// The whole backbone (vit_model.*). Stage 3's top blocks and all of stage 4 carry the
// image-to-text attention (`fused_from`: the first fused block of stage 3).
template <class T>
struct Swin {
  SwinConfig config;
  PatchEmbed<T> patch_embed;
  std::vector<SwinStage<T>> layers;
  nn::LayerNorm<T> norm;

  Swin() = default;
  Swin(const SwinConfig& c, std::int64_t text_dim, int fused_from)
      : config(c), patch_embed(c), layers(make_swin_stages<T>(c, c.window(), true, text_dim, fused_from, true)),
        norm(c.num_features()) {}

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    patch_embed.visit(prefix + "patch_embed.", f);
    for (std::size_t s = 0; s < layers.size(); ++s) layers[s].visit(prefix + "layers." + std::to_string(s) + ".", f);
    norm.visit(prefix + "norm.", f);
  }
};

}  // namespace fiber::models
