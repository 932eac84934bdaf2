#pragma once
// Public backbones into a coarse FIBER model, as the official recipe starts pre-training: the
// Swin-B/384 ImageNet-22k weights into vit_model.*, roberta-base into text_transformer.*, every
// other parameter as a fresh model has it (coarse_init.hpp).
//
//   models::FiberCoarse<float, models::FiberBaseCoarse384> model;
//   models::init_coarse(model, seed);
//   auto report = models::load_backbones(model, io::open_checkpoint("swin_base_patch4_window12_384_22k.pth"),
//                                        io::open_checkpoint("roberta-base/model.safetensors"));
//
// Swin, either layout (told apart by where the first patch merging is):
//   Microsoft's release  {"model": ...}; layers.S.downsample.* at the END of stage S (S = 0..2),
//                        relative_position_index and attn_mask buffers, head.* (the classifier)
//   timm 1.x             layers.S.downsample.* at the START of stage S (S = 1..3), no buffers,
//                        head.fc.*
// RoBERTa (transformers): with or without the "roberta." prefix; lm_head.* (the MLM head of
// RobertaForMaskedLM) ignored; the pooler optional (kept as initialised when absent); old
// LayerNorm names gamma / beta accepted.
// Relative-position tables of another window are resized (position_resize.hpp). Anything else
// that does not fit (a missing backbone tensor, a tensor the model has no place for, a shape
// mismatch, a file that is no such checkpoint) is one fiber::Error listing all of it.
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/io/checkpoint.hpp"
#include "fiber/models/coarse_init.hpp"
#include "fiber/models/fiber_coarse.hpp"
#include "fiber/models/position_resize.hpp"
#include "fiber/nn/state_dict.hpp"

namespace fiber::models {

enum class SwinLayout { microsoft, timm };
inline const char* swin_layout_name(SwinLayout l) { return l == SwinLayout::microsoft ? "Microsoft" : "timm"; }

struct BackboneReport {
  SwinLayout swin_layout = SwinLayout::microsoft;
  bool roberta_prefixed = false;
  std::int64_t swin_loaded = 0, roberta_loaded = 0;  // tensors copied from each file
  std::vector<std::string> adapted;                  // model keys resized (relative-position tables)
  std::vector<std::string> ignored;                  // file keys left unread on purpose ("file: key")
  std::vector<std::string> initialised;              // model keys no backbone provides (the init rule stays)
};

namespace detail {

// Several checkpoints seen as one under new names (a name -> (file, original name) table).
class RenamedSource final : public io::Checkpoint::Source {
 public:
  RenamedSource(std::vector<io::Checkpoint> files, std::vector<std::pair<std::size_t, std::string>> origin)
      : files_(std::move(files)), origin_(std::move(origin)) {}
  io::TensorRecord load(const io::TensorInfo& info, std::size_t index) const override {
    const auto& [file, name] = origin_.at(index);
    io::TensorRecord r = files_[file].record(name);
    r.name = info.name;
    return r;
  }

 private:
  std::vector<io::Checkpoint> files_;
  std::vector<std::pair<std::size_t, std::string>> origin_;
};

// Parameters a backbone file must provide: the Swin and RoBERTa weights, not the fusion
// additions (i2t / t2i cross-attention and gates) nor RoBERTa's pooler (absent from MLM files).
inline bool backbone_required(std::string_view key) {
  auto has = [&](std::string_view s) { return key.find(s) != std::string_view::npos; };
  if (key.starts_with("vit_model."))
    return !(has(".qkv_text_i2t.") || has(".qkv_i2t.") || has(".proj_i2t.") || has(".norm_i2t_i.") || has("alpha_i2t"));
  if (key.starts_with("text_transformer."))
    return !(has(".crossattention_t2i.") || has("alpha_t2i") || key.starts_with("text_transformer.pooler."));
  return false;
}

inline std::string first_names(const io::Checkpoint& ck, std::size_t n = 3) {
  std::string s;
  for (std::size_t i = 0; i < ck.names().size() && i < n; ++i) s += (i ? ", '" : "'") + ck.names()[i] + "'";
  if (ck.names().size() > n) s += ", ...";
  return s.empty() ? "no tensors" : s;
}

}  // namespace detail

// Which Swin layout `ck` holds; fiber::Error when it is not a Swin checkpoint.
inline SwinLayout detect_swin_layout(const io::Checkpoint& ck) {
  FIBER_CHECK(ck.contains("patch_embed.proj.weight"), ck.file(), ": not a Swin checkpoint (no 'patch_embed.proj.weight';",
              " it holds ", ck.size(), " tensors: ", detail::first_names(ck), ")");
  if (ck.contains("layers.0.downsample.reduction.weight")) return SwinLayout::microsoft;
  if (ck.contains("layers.1.downsample.reduction.weight")) return SwinLayout::timm;
  fail(ck.file(), ": a Swin checkpoint without patch merging weights (neither 'layers.0.downsample.reduction.weight'",
       " as Microsoft's release nor 'layers.1.downsample.reduction.weight' as timm)");
}

// The model key of Swin file key `name` (nullopt: not a weight, left unread).
inline std::optional<std::string> swin_model_key(const std::string& name, SwinLayout layout) {
  if (name.starts_with("head.") || name.ends_with("relative_position_index") || name.ends_with("attn_mask"))
    return std::nullopt;
  std::string key = name;
  if (layout == SwinLayout::timm) {
    static const std::regex downsample(R"(^layers\.(\d+)\.downsample\.)");
    std::smatch m;
    if (std::regex_search(key, m, downsample)) {
      const int stage = std::stoi(m[1].str());
      // timm's stage S starts with the merging that ends our stage S - 1 (stage 0 has none).
      key = "layers." + std::to_string(stage - 1) + ".downsample." + m.suffix().str();
    }
  }
  return "vit_model." + key;
}

// Whether `ck` holds RoBERTa under the "roberta." prefix; fiber::Error when it is not RoBERTa.
inline bool detect_roberta_prefix(const io::Checkpoint& ck) {
  if (ck.contains("roberta.embeddings.word_embeddings.weight")) return true;
  if (ck.contains("embeddings.word_embeddings.weight")) return false;
  fail(ck.file(), ": not a RoBERTa checkpoint (no 'embeddings.word_embeddings.weight', with or without the 'roberta.'",
       " prefix; it holds ", ck.size(), " tensors: ", detail::first_names(ck), ")");
}

inline std::optional<std::string> roberta_model_key(const std::string& name, bool prefixed) {
  if (name.starts_with("lm_head.")) return std::nullopt;
  std::string key = name;
  if (prefixed && key.starts_with("roberta.")) key.erase(0, 8);
  if (key.ends_with(".gamma")) key = key.substr(0, key.size() - 6) + ".weight";
  if (key.ends_with(".beta")) key = key.substr(0, key.size() - 5) + ".bias";
  return "text_transformer." + key;
}

// Copies the backbones into `model` (initialise it first: what no backbone provides keeps its
// values). Throws one fiber::Error listing every problem; nothing is half-reported.
template <class T, FiberCoarseConfig C>
BackboneReport load_backbones(FiberCoarse<T, C>& model, const io::Checkpoint& swin, const io::Checkpoint& roberta) {
  BackboneReport report;
  report.swin_layout = detect_swin_layout(swin);
  report.roberta_prefixed = detect_roberta_prefix(roberta);

  // One view of both files under model keys.
  std::vector<io::TensorInfo> infos;
  std::vector<std::pair<std::size_t, std::string>> origin;
  std::unordered_map<std::string, std::string> file_name;  // model key -> "file: original key"
  auto add = [&](std::size_t which, const io::Checkpoint& ck, auto&& rename) {
    for (const std::string& name : ck.names()) {
      const std::optional<std::string> key = rename(name);
      if (!key) {
        report.ignored.push_back(ck.file() + ": " + name);
        continue;
      }
      FIBER_CHECK(!file_name.count(*key), ck.file(), ": '", name, "' and ", file_name[*key], " both map to '", *key, "'");
      io::TensorInfo info = ck.info(name);
      info.name = *key;
      infos.push_back(std::move(info));
      origin.emplace_back(which, name);
      file_name[*key] = ck.file() + ": '" + name + "'";
    }
  };
  add(0, swin, [&](const std::string& n) { return swin_model_key(n, report.swin_layout); });
  add(1, roberta, [&](const std::string& n) { return roberta_model_key(n, report.roberta_prefixed); });
  const io::Checkpoint both(io::CheckpointFormat::safetensors, io::CheckpointLayout::state_dict,
                            swin.file() + " + " + roberta.file(), infos, {}, {}, {},
                            std::make_shared<detail::RenamedSource>(std::vector<io::Checkpoint>{swin, roberta}, origin),
                            nullptr);

  nn::LoadOptions<T> options;
  options.strict = false;
  options.adapt = relative_position_table_adapter<T>();
  const nn::LoadReport loaded = nn::load_state_dict<T>(model, both, options);

  nn::LoadReport problems;
  for (const std::string& key : loaded.missing)
    (detail::backbone_required(key) ? problems.missing : report.initialised).push_back(key);
  for (const std::string& key : loaded.unexpected) problems.unexpected.push_back(file_name[key] + " (would be '" + key + "')");
  for (const std::string& m : loaded.mismatched) {
    const std::string key = m.substr(0, m.find(':'));
    problems.mismatched.push_back(file_name.count(key) ? file_name[key] + " -> " + m : m);
  }
  if (!problems.ok()) {
    // The usual cause first: a backbone of another size (Swin-L, BERT-large, a tiny test file).
    std::string sizes;
    const auto& embed = swin.info("patch_embed.proj.weight").shape;
    if (!embed.empty() && embed[0] != C.swin.embed_dim)
      sizes += "\n  the Swin has embed_dim " + std::to_string(embed[0]) + ", this model " + std::to_string(C.swin.embed_dim);
    const std::string words = report.roberta_prefixed ? "roberta.embeddings.word_embeddings.weight" : "embeddings.word_embeddings.weight";
    const auto& table = roberta.info(words).shape;
    if (table.size() == 2 && (table[0] != C.text.vocab_size || table[1] != C.text.hidden))
      sizes += "\n  the RoBERTa has " + std::to_string(table[0]) + " tokens of width " + std::to_string(table[1]) +
               ", this model " + std::to_string(C.text.vocab_size) + " of width " + std::to_string(C.text.hidden);
    fail("the backbones do not fit the FIBER coarse model (", swin.file(), ": Swin, ", swin_layout_name(report.swin_layout),
         " layout; ", roberta.file(), ": RoBERTa", report.roberta_prefixed ? " with the 'roberta.' prefix" : "", ")", sizes,
         problems.describe());
  }
  report.adapted = loaded.adapted;
  // Tensors read per backbone: model keys (not derived buffers) that a file provided.
  std::int64_t swin_n = 0, roberta_n = 0;
  model.visit("", [&](const std::string& key, nn::Entry<T> e) {
    if (e.role == nn::Role::derived || !file_name.count(key)) return;
    (key.starts_with("vit_model.") ? swin_n : roberta_n) += 1;
  });
  report.swin_loaded = swin_n;
  report.roberta_loaded = roberta_n;
  return report;
}

// What `fiber init coarse` does: the backbones into `model`, then every parameter they do not
// provide initialised from `seed`. The same values as init_coarse(model, seed) followed by
// load_backbones (each parameter has its own stream), but a file that does not fit fails before
// anything is drawn.
template <class T, FiberCoarseConfig C>
BackboneReport init_from_backbones(FiberCoarse<T, C>& model, const io::Checkpoint& swin, const io::Checkpoint& roberta,
                                   std::uint64_t seed) {
  BackboneReport report = load_backbones(model, swin, roberta);
  const std::unordered_set<std::string> rest(report.initialised.begin(), report.initialised.end());
  init_coarse(model, seed, {}, [&](std::string_view key) { return rest.count(std::string(key)) != 0; });
  return report;
}

}  // namespace fiber::models
