#pragma once
// Starting a fine-grained FIBER from a coarse one, as the official fine-grained training does
// (utils/model_serialization.py, align_and_update_state_dicts), and the official initialisation
// of what the coarse model does not have (the FPN and the DyHead):
//
//   models::FiberFine<float, models::FiberBaseFine> model;
//   const auto report = models::init_fine_from_coarse(model, io::open_checkpoint("coarse.ckpt"), /*seed=*/0);
//
// The suffix rule: the coarse keys lose every "text_transformer." and "vit_model."; each key of
// the fine model takes the coarse key that is the longest suffix of it (plain string suffix, as
// the official `endswith`). So vit_model.layers.2.blocks.14.attn.qkv_i2t.weight lands on
// fusion_backbone.backbone.body.layers.2.blocks.14.attn.qkv_i2t.weight and
// text_transformer.encoder.layer.6.* on fusion_backbone.language_backbone.body.model.encoder.layer.6.*.
// The coarse heads, queues, poolers, alpha_t2i of layers 0-5, the cross-attention's unused
// LayerNorm and (for v2) norm_i2t_i match nothing and are reported unused.
//
// Where we are stricter than the official (which logs and goes on):
//   - every backbone parameter must come from the coarse file (else the official would leave the
//     fine model's own initialisation there, which for RoBERTa is roberta-base from the Hub);
//   - a shape mismatch is an error, except relative-position tables of another window, which are
//     resized bicubically (position_resize.hpp) where the official would keep its random init.
// The FPN, the head and the backbone's new stage norms (norm1..3) are initialised as their
// official constructors do (fine_init_rule), from per-parameter generator streams (init_stream in
// coarse_init.hpp).
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <unordered_map>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/io/load_tensor.hpp"
#include "fiber/models/coarse_init.hpp"
#include "fiber/models/fiber_fine.hpp"
#include "fiber/models/position_resize.hpp"

namespace fiber::models {

// How one FPN or head parameter is initialised by the official constructors.
enum class FineInitRule {
  zeros,
  ones,
  kaiming_uniform_a1,  // FPN convs (conv_with_kaiming_uniform, LastLevelP6P7): U(±sqrt(3 / fan_in))
  default_uniform,     // PyTorch's Linear / Conv2d default and ModulatedDeformConv.reset_parameters:
                       // U(±1/sqrt(fan_in)) (the bias of a default Linear / Conv2d too)
  normal_001,          // N(0, 0.01): AttnConv, cls_logits, bbox_pred, centerness weights
  prior_bias,          // -log((1 - p) / p): cls_logits.bias and bias0
  log_scale,           // MODEL.DYHEAD.LOG_SCALE
  backbone,            // not a head parameter: the coarse file provides it
};

inline const char* fine_init_rule_name(FineInitRule r) {
  switch (r) {
    case FineInitRule::zeros: return "zeros";
    case FineInitRule::ones: return "ones";
    case FineInitRule::kaiming_uniform_a1: return "kaiming_uniform(a=1)";
    case FineInitRule::default_uniform: return "U(±1/sqrt(fan_in))";
    case FineInitRule::normal_001: return "normal(0.01)";
    case FineInitRule::prior_bias: return "prior bias";
    case FineInitRule::log_scale: return "log_scale";
    case FineInitRule::backbone: return "from the coarse model";
  }
  return "?";
}

// The rule for a key of FiberFine::visit.
inline FineInitRule fine_init_rule(std::string_view key) {
  auto ends = [&](std::string_view s) { return key.ends_with(s); };
  auto has = [&](std::string_view s) { return key.find(s) != std::string_view::npos; };
  const bool bias = ends(".bias");
  if (key.starts_with("fusion_backbone.backbone.fpn.")) return bias ? FineInitRule::zeros : FineInitRule::kaiming_uniform_a1;
  // The stage norms norm1..3 are new (the coarse Swin has one final norm, which no suffix matches).
  if (key.starts_with("fusion_backbone.backbone.body.norm")) return bias ? FineInitRule::zeros : FineInitRule::ones;
  if (!key.starts_with("rpn.head.")) return FineInitRule::backbone;
  if (key == "rpn.head.log_scale") return FineInitRule::log_scale;
  if (key == "rpn.head.bias0" || key == "rpn.head.cls_logits.bias") return FineInitRule::prior_bias;
  if (key == "rpn.head.bias_lang") return FineInitRule::zeros;
  if (has(".scales.")) return FineInitRule::ones;
  if (has(".bn.")) return bias ? FineInitRule::zeros : FineInitRule::ones;  // GroupNorm
  if (has(".DyConv.")) return bias ? FineInitRule::zeros : FineInitRule::default_uniform;  // ModulatedDeformConv
  if (has(".AttnConv.") || has("rpn.head.cls_logits.") || has("rpn.head.bbox_pred.") || has("rpn.head.centerness."))
    return bias ? FineInitRule::zeros : FineInitRule::normal_001;
  // DYReLU's fc, the offset conv, dot_product_projection_text: PyTorch defaults, bias included.
  return FineInitRule::default_uniform;
}

// Initialises the FPN, the head and the stage norms of `model` (the keys whose rule is not
// `backbone`); returns their keys.
template <class T, FiberFineConfig C>
std::vector<std::string> init_fine_head(FiberFine<T, C>& model, std::uint64_t seed) {
  std::vector<std::string> done;
  // fan_in of a weight (in_features, or in_channels * kh * kw); a bias takes its weight's.
  std::unordered_map<std::string, std::int64_t> fan_in;
  model.visit("", [&](const std::string& key, nn::Entry<T> e) {
    if (e.role == nn::Role::parameter && key.ends_with(".weight") && e.var->dim() >= 2)
      fan_in[key.substr(0, key.size() - 7)] = e.var->numel() / e.var->size(0);
  });
  model.visit("", [&](const std::string& key, nn::Entry<T> e) {
    if (e.role != nn::Role::parameter) return;
    const FineInitRule rule = fine_init_rule(key);
    if (rule == FineInitRule::backbone) return;
    const Shape& shape = e.var->shape();
    Generator gen(init_stream(seed, key));
    const std::string module = key.substr(0, key.rfind('.'));
    auto bound = [&](double gain) {
      FIBER_CHECK(fan_in.count(module), "init '", key, "': no weight to take fan_in from");
      return T(std::sqrt(gain / double(fan_in.at(module))));
    };
    Tensor<T> v;
    switch (rule) {
      case FineInitRule::zeros: v = Tensor<T>::zeros(shape); break;
      case FineInitRule::ones: v = Tensor<T>::ones(shape); break;
      case FineInitRule::kaiming_uniform_a1: v = rand<T>(shape, gen, -bound(3.0), bound(3.0)); break;
      case FineInitRule::default_uniform: v = rand<T>(shape, gen, -bound(1.0), bound(1.0)); break;
      case FineInitRule::normal_001: v = randn<T>(shape, gen, T(0), T(0.01)); break;
      case FineInitRule::prior_bias: v = Tensor<T>::full(shape, T(C.head.bias0_init())); break;
      case FineInitRule::log_scale: v = Tensor<T>::full(shape, T(C.head.log_scale)); break;
      case FineInitRule::backbone: return;
    }
    e.var->value().copy_(v);
    done.push_back(key);
  });
  return done;
}

struct FineInitReport {
  std::int64_t copied = 0;                 // backbone tensors taken from the coarse file
  std::vector<std::string> matches;        // "fine key <- coarse key", in the fine model's order
  std::vector<std::string> adapted;        // fine keys whose relative-position table was resized
  std::vector<std::string> initialised;    // FPN, head and stage-norm keys (the official constructors' rules)
  std::vector<std::string> unused;         // coarse keys no fine key took
};

// The coarse key (as named in the file) each fine parameter takes by the official suffix rule;
// "" where none matches. Trainer entries (optimizer.*, task.*) are never candidates.
template <class T, FiberFineConfig C>
std::vector<std::pair<std::string, std::string>> coarse_to_fine_matches(FiberFine<T, C>& model, const io::Checkpoint& coarse) {
  std::vector<std::pair<std::string, std::string>> renamed;  // (official-renamed, file name)
  for (const std::string& name : coarse.names()) {
    if (name.starts_with("optimizer.") || name.starts_with("task.")) continue;
    std::string r = name;
    for (std::string_view drop : {std::string_view("text_transformer."), std::string_view("vit_model.")})
      for (std::size_t at; (at = r.find(drop)) != std::string::npos;) r.erase(at, drop.size());
    renamed.emplace_back(std::move(r), name);
  }
  std::vector<std::pair<std::string, std::string>> out;
  model.visit("", [&](const std::string& key, nn::Entry<T> e) {
    if (e.role != nn::Role::parameter) return;
    std::size_t best = 0;
    std::string from;
    for (const auto& [r, name] : renamed)
      if (r.size() > best && key.ends_with(r)) best = r.size(), from = name;
    out.emplace_back(key, from);
  });
  return out;
}

// `model` from the coarse checkpoint `coarse` (what `fiber init coarse` or `fiber train coarse`
// writes, or an official coarse .ckpt), the FPN and head from `seed`. One fiber::Error lists every
// backbone parameter the file lacks and every shape that does not fit.
template <class T, FiberFineConfig C>
FineInitReport init_fine_from_coarse(FiberFine<T, C>& model, const io::Checkpoint& coarse, std::uint64_t seed) {
  FineInitReport report;
  std::vector<std::string> missing, mismatched;
  std::unordered_set<std::string> used;
  std::unordered_map<std::string, Var<T>*> params;
  model.visit("", [&](const std::string& key, nn::Entry<T> e) {
    if (e.role == nn::Role::parameter) params[key] = e.var;
  });
  const auto matches = coarse_to_fine_matches(model, coarse);
  for (const auto& [key, from] : matches) {
    if (fine_init_rule(key) != FineInitRule::backbone) continue;
    if (from.empty()) {
      missing.push_back(key);
      continue;
    }
    Var<T>& p = *params.at(key);
    const Shape stored(coarse.info(from).shape);
    Tensor<T> v;
    if (stored == p.shape()) {
      v = io::load_tensor<T>(coarse, from);
    } else if (auto resized = relative_position_table_adapter<T>()(key, io::load_tensor<T>(coarse, from), p.shape())) {
      v = *resized;
      report.adapted.push_back(key);
    } else {
      std::ostringstream m;
      m << key << " <- " << from << ": file " << stored << ", model " << p.shape();
      mismatched.push_back(m.str());
      continue;
    }
    p.value().copy_(v);
    used.insert(from);
    report.matches.push_back(key + " <- " + from);
    ++report.copied;
  }
  if (!missing.empty() || !mismatched.empty()) {
    std::string s;
    auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      s += "\n  " + std::to_string(keys.size()) + " " + what + ":";
      for (std::size_t i = 0; i < keys.size() && i < 50; ++i) s += "\n    " + keys[i];
      if (keys.size() > 50) s += "\n    ...";
    };
    list("backbone parameters with no coarse key as their suffix", missing);
    list("shapes that do not fit", mismatched);
    fail(coarse.file(), ": not a coarse FIBER of this configuration (window ", C.window, ", Swin width ", C.swin.embed_dim,
         ", text width ", C.text.hidden, ")", s);
  }
  report.initialised = init_fine_head(model, seed);
  for (const std::string& name : coarse.names())
    if (!used.count(name)) report.unused.push_back(name);
  return report;
}

}  // namespace fiber::models
