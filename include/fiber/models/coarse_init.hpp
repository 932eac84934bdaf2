#pragma once
// The official initialisation of a fresh coarse FIBER model (what FIBERTransformerSS's constructor
// leaves in every parameter before any checkpoint is loaded), drawn from our counter-based
// Generator:
//
//   models::FiberCoarse<float, models::FiberBaseCoarse384> model;
//   models::init_coarse(model, /*seed=*/0);
//   models::init_coarse(model, /*seed=*/0, {.gate = 1});  // the same, the cross-attention gates at 1
//
// The rule comes from where a parameter lives (its official key):
//   vit_model.*          Swin's constructor: apply(_init_vit_weights) -> Linear weights
//                        trunc_normal(0.02) in [-2, 2], biases 0; LayerNorm 1 / 0; the relative
//                        position tables trunc_normal(0.02); the patch-embedding conv keeps
//                        PyTorch's default (kaiming_uniform(a=sqrt 5): U(+-1/sqrt(fan_in)), bias too);
//                        alpha_i2t: the gate (0 officially).
//   text_transformer.*   RobertaModel._init_weights: Linear and Embedding N(0, 0.02), biases 0,
//                        the padding row (pad_token_id) of word and position embeddings 0;
//                        LayerNorm 1 / 0; alpha_t2i: the gate (0 officially).
//   everything else      objectives.init_weights: Linear N(0, 0.02), biases 0, LayerNorm 1 / 0;
//                        mlm_score.bias 0; temp 0.07; rank_output is a view of itm_score.fc row 1.
// Each parameter draws from its own stream, Generator(mix(seed, key)), so its values depend only
// on the seed and its key, not on which other parameters exist or the order they are visited in.
//
// The one departure on offer, CoarseInitOptions::gate: the official gates start at 0, so the
// fused layers leave pre-trained backbones exactly as they were; a model trained from scratch has
// nothing to keep, and there gates at 0 grow too slowly for ITM (docs/pretraining.md, runs o-q).
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/models/fiber_coarse.hpp"
#include "fiber/nn/module.hpp"

namespace fiber::models {

// How one parameter is initialised.
enum class InitRule {
  zeros,
  ones,
  normal,         // N(0, 0.02)
  trunc_normal,   // N(0, 0.02) truncated to [-2, 2] (timm's trunc_normal_ bounds are absolute)
  embedding,      // N(0, 0.02) with the padding row 0
  conv_uniform,   // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's Conv2d default for weight and bias
  temperature,    // 0.07
  gate,           // the cross-attention gates alpha_i2t / alpha_t2i: CoarseInitOptions::gate (0 officially)
};

// What init_coarse may do other than the official initialisation.
struct CoarseInitOptions {
  double gate = 0.0;  // every alpha_i2t and alpha_t2i; the official value is 0
};

inline const char* init_rule_name(InitRule r) {
  switch (r) {
    case InitRule::zeros: return "zeros";
    case InitRule::ones: return "ones";
    case InitRule::normal: return "normal(0.02)";
    case InitRule::trunc_normal: return "trunc_normal(0.02)";
    case InitRule::embedding: return "normal(0.02), padding row 0";
    case InitRule::conv_uniform: return "conv default uniform";
    case InitRule::temperature: return "0.07";
    case InitRule::gate: return "the gate (0 officially)";
  }
  return "?";
}

// The rule for the parameter under official key `key` (a key of FiberCoarse::visit).
inline InitRule coarse_init_rule(std::string_view key) {
  auto ends = [&](std::string_view s) { return key.ends_with(s); };
  auto has = [&](std::string_view s) { return key.find(s) != std::string_view::npos; };
  if (key == "temp") return InitRule::temperature;
  if (ends("alpha_i2t") || ends("alpha_t2i")) return InitRule::gate;
  if (key == "mlm_score.bias") return InitRule::zeros;
  // LayerNorms: norm, norm1, norm2, norm_i2t_i, patch_embed.norm, downsample.norm, *.LayerNorm.
  const std::size_t dot = key.rfind('.');
  const std::string_view module = key.substr(0, dot == std::string_view::npos ? 0 : dot);
  const std::string_view leaf = module.substr(module.rfind('.') == std::string_view::npos ? 0 : module.rfind('.') + 1);
  const bool is_norm = leaf.starts_with("norm") || leaf == "LayerNorm";
  if (is_norm) return ends(".weight") ? InitRule::ones : InitRule::zeros;
  if (key.starts_with("vit_model.")) {
    if (has("patch_embed.proj.")) return InitRule::conv_uniform;
    if (ends("relative_position_bias_table")) return InitRule::trunc_normal;
    return ends(".bias") ? InitRule::zeros : InitRule::trunc_normal;
  }
  if (key.starts_with("text_transformer.") && (ends("word_embeddings.weight") || ends("position_embeddings.weight")))
    return InitRule::embedding;
  return ends(".bias") ? InitRule::zeros : InitRule::normal;
}

// FNV-1a of the key mixed into the seed: one generator stream per parameter.
inline std::uint64_t init_stream(std::uint64_t seed, std::string_view key) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : key) h = (h ^ std::uint8_t(c)) * 1099511628211ull;
  // splitmix64 finaliser over seed and hash, so nearby seeds give unrelated streams.
  std::uint64_t z = h ^ (seed + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// N(mean, std^2) truncated to [low, high] (absolute bounds, as timm's trunc_normal_): values
// outside are redrawn from further draws of the same generator until none is left.
template <class T>
Tensor<T> trunc_normal(const Shape& shape, Generator& gen, T mean, T std, T low, T high) {
  FIBER_CHECK(std > T(0) && low < high && low <= mean && mean <= high, "trunc_normal: needs std > 0 and low <= mean <= high, got mean ",
              mean, " std ", std, " bounds [", low, ", ", high, "]");
  Tensor<T> t = randn<T>(shape, gen, mean, std);
  T* p = t.data();
  for (int round = 0; round < 1000; ++round) {
    bool outside = false;
    for (std::int64_t i = 0; i < t.numel() && !outside; ++i) outside = p[i] < low || p[i] > high;
    if (!outside) return t;
    const Tensor<T> again = randn<T>(shape, gen, mean, std);
    for (std::int64_t i = 0; i < t.numel(); ++i)
      if (p[i] < low || p[i] > high) p[i] = again.data()[i];
  }
  fail("trunc_normal: the bounds [", low, ", ", high, "] hold too little of N(", mean, ", ", std, "^2)");
}

// The values `rule` gives a parameter of `shape` under `key`.
template <class T>
Tensor<T> init_values(InitRule rule, const Shape& shape, std::uint64_t seed, std::string_view key, std::int64_t pad_row,
                      std::int64_t conv_fan_in, const CoarseInitOptions& options) {
  Generator gen(init_stream(seed, key));
  switch (rule) {
    case InitRule::zeros: return Tensor<T>::zeros(shape);
    case InitRule::ones: return Tensor<T>::ones(shape);
    case InitRule::temperature: return Tensor<T>::full(shape, T(0.07));
    case InitRule::gate: return Tensor<T>::full(shape, T(options.gate));
    case InitRule::normal: return randn<T>(shape, gen, T(0), T(0.02));
    case InitRule::trunc_normal: return trunc_normal<T>(shape, gen, T(0), T(0.02), T(-2), T(2));
    case InitRule::embedding: {
      Tensor<T> t = randn<T>(shape, gen, T(0), T(0.02));
      FIBER_CHECK(shape.size() == 2 && pad_row >= 0 && pad_row < shape[0], "init '", key, "': padding row ", pad_row,
                  " outside a table of shape ", shape);
      t.narrow(0, pad_row, 1).copy_(Tensor<T>::zeros({1, shape[1]}));
      return t;
    }
    case InitRule::conv_uniform: {
      const T bound = T(1.0 / std::sqrt(double(conv_fan_in)));
      return rand<T>(shape, gen, -bound, bound);
    }
  }
  fail("init '", key, "': unknown rule");
}

// Initialises every parameter of `model` (tied views follow their storage) as a fresh official
// model, deterministically from `seed`, but for what `options` changes. `only`, when given, limits
// it to keys it accepts.
template <class T, FiberCoarseConfig C, class Filter>
void init_coarse(FiberCoarse<T, C>& model, std::uint64_t seed, const CoarseInitOptions& options, Filter&& only) {
  FIBER_CHECK(std::isfinite(options.gate), "init_coarse: the gate start must be finite, got ", options.gate);
  const std::int64_t conv_fan_in = std::int64_t(C.swin.in_chans) * C.swin.patch_size * C.swin.patch_size;
  model.visit("", [&](const std::string& key, nn::Entry<T> e) {
    if (e.role != nn::Role::parameter || !only(std::string_view(key))) return;
    const Tensor<T> v =
        init_values<T>(coarse_init_rule(key), e.var->shape(), seed, key, C.text.pad_token_id, conv_fan_in, options);
    e.var->value().copy_(v);  // in place: rank_output views itm_score.fc's storage
  });
}
template <class T, FiberCoarseConfig C>
void init_coarse(FiberCoarse<T, C>& model, std::uint64_t seed, const CoarseInitOptions& options = {}) {
  init_coarse(model, seed, options, [](std::string_view) { return true; });
}

}  // namespace fiber::models
