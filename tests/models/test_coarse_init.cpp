// Official initialisation of a fresh coarse model, the relative-position table resize against the
// official swin_adapt_position_encoding, and public backbones (saved by timm and transformers:
// tests/data/backbones from tests/reference/make_backbones.py) into the tiny model.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "fiber/io/load_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/safetensors_writer.hpp"
#include "fiber/models/coarse_backbones.hpp"
#include "fiber/models/coarse_init.hpp"

using namespace fiber;
using Tiny = models::FiberCoarse<float, models::FiberTinyCoarse>;

// The tiny model at 192 x 192: window 6, so every relative-position table has another size.
inline constexpr models::FiberCoarseConfig Tiny192Config{
    .swin = {.image_size = 192, .embed_dim = 8, .depths = {2, 2, 18, 2}, .num_heads = {1, 1, 2, 4}},
    .text = {.vocab_size = 1000, .hidden = 16, .heads = 2, .layers = 12, .intermediate = 64, .max_positions = 42},
    .num_fuse_block = 6,
    .hidden = 16,
    .mlm_vocab = 1000,
};
using Tiny192 = models::FiberCoarse<float, Tiny192Config>;

namespace {

std::string backbone(const std::string& name) { return std::string(FIBER_TEST_DATA_DIR) + "/backbones/" + name; }

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
};
Stats stats(const Tensor<float>& t) {
  const Tensor<float> c = t.contiguous();
  double s = 0, s2 = 0, m = 0;
  for (std::int64_t i = 0; i < c.numel(); ++i) {
    const double v = c.data()[i];
    s += v;
    s2 += v * v;
    m = std::max(m, std::abs(v));
  }
  const double n = double(c.numel()), mean = s / n;
  return {mean, std::sqrt(std::max(0.0, s2 / n - mean * mean)), m};
}

bool all_equal(const Tensor<float>& t, float v) {
  const Tensor<float> c = t.contiguous();
  for (std::int64_t i = 0; i < c.numel(); ++i)
    if (c.data()[i] != v) return false;
  return true;
}

double max_diff(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.shape() == b.shape());
  const Tensor<float> x = a.contiguous(), y = b.contiguous();
  double m = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::abs(double(x.data()[i]) - double(y.data()[i])));
  return m;
}

std::map<std::string, Tensor<float>> values_of(Tiny& m) {
  std::map<std::string, Tensor<float>> out;
  m.visit("", [&](const std::string& key, nn::Entry<float> e) {
    if (e.role != nn::Role::derived) out[key] = e.var->value();
  });
  return out;
}

// Writes `tensors` as float32 safetensors.
void write_tensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor<float>>>& tensors) {
  std::vector<Tensor<float>> keep;
  std::vector<io::NamedBuffer> buffers;
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.contiguous());
    const Tensor<float>& c = keep.back();
    buffers.push_back({name, DType::f32, std::vector<std::int64_t>(c.shape().begin(), c.shape().end()),
                       std::span<const std::byte>(reinterpret_cast<const std::byte*>(c.data()), std::size_t(c.numel()) * 4)});
  }
  io::write_safetensors(path, std::span<const io::NamedBuffer>(buffers));
}

// Every floating tensor of a checkpoint, as float, in file order.
std::vector<std::pair<std::string, Tensor<float>>> read_all(const io::Checkpoint& ck) {
  std::vector<std::pair<std::string, Tensor<float>>> out;
  for (const auto& name : ck.names())
    if (is_floating(ck.info(name).dtype)) out.emplace_back(name, io::load_tensor<float>(ck, name));
  return out;
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("fiber_test_coarse_init_" + name);
}

}  // namespace

// ---- the initialisation rule --------------------------------------------------------------------

TEST_CASE("coarse init: the rule of each official key") {
  using models::InitRule;
  using models::coarse_init_rule;
  CHECK(coarse_init_rule("temp") == InitRule::temperature);
  CHECK(coarse_init_rule("vit_model.layers.2.blocks.17.attn.alpha_i2t") == InitRule::gate);
  CHECK(coarse_init_rule("text_transformer.encoder.layer.6.alpha_t2i") == InitRule::gate);
  CHECK(coarse_init_rule("vit_model.patch_embed.proj.weight") == InitRule::conv_uniform);
  CHECK(coarse_init_rule("vit_model.patch_embed.proj.bias") == InitRule::conv_uniform);
  CHECK(coarse_init_rule("vit_model.patch_embed.norm.weight") == InitRule::ones);
  CHECK(coarse_init_rule("vit_model.layers.0.downsample.norm.bias") == InitRule::zeros);
  CHECK(coarse_init_rule("vit_model.layers.0.downsample.reduction.weight") == InitRule::trunc_normal);
  CHECK(coarse_init_rule("vit_model.layers.3.blocks.0.attn.norm_i2t_i.weight") == InitRule::ones);
  CHECK(coarse_init_rule("vit_model.layers.3.blocks.0.attn.qkv_text_i2t.weight") == InitRule::trunc_normal);
  CHECK(coarse_init_rule("vit_model.layers.3.blocks.0.attn.relative_position_bias_table") == InitRule::trunc_normal);
  CHECK(coarse_init_rule("vit_model.norm.weight") == InitRule::ones);
  CHECK(coarse_init_rule("text_transformer.embeddings.word_embeddings.weight") == InitRule::embedding);
  CHECK(coarse_init_rule("text_transformer.embeddings.position_embeddings.weight") == InitRule::embedding);
  CHECK(coarse_init_rule("text_transformer.embeddings.token_type_embeddings.weight") == InitRule::normal);
  CHECK(coarse_init_rule("text_transformer.embeddings.LayerNorm.weight") == InitRule::ones);
  CHECK(coarse_init_rule("text_transformer.encoder.layer.7.crossattention_t2i.self.key.weight") == InitRule::normal);
  CHECK(coarse_init_rule("text_transformer.encoder.layer.7.crossattention_t2i.output.LayerNorm.bias") == InitRule::zeros);
  CHECK(coarse_init_rule("mlm_score.bias") == InitRule::zeros);
  CHECK(coarse_init_rule("mlm_score.transform.LayerNorm.weight") == InitRule::ones);
  CHECK(coarse_init_rule("mlm_score.decoder.weight") == InitRule::normal);
  CHECK(coarse_init_rule("itm_score.fc.bias") == InitRule::zeros);
  CHECK(coarse_init_rule("cross_modal_image_pooler_itc.dense.weight") == InitRule::normal);
}

TEST_CASE("coarse init: values, statistics, tied rank_output, determinism") {
  auto* m = new Tiny;
  models::init_coarse(*m, 7);
  auto v = values_of(*m);
  CHECK(v.at("temp").item() == doctest::Approx(0.07f));
  for (const auto& [key, t] : v) {
    const auto rule = models::coarse_init_rule(key);
    INFO(key);
    if (rule == models::InitRule::zeros) CHECK(all_equal(t, 0.0f));
    if (rule == models::InitRule::ones) CHECK(all_equal(t, 1.0f));
    if (rule == models::InitRule::gate) CHECK(all_equal(t, 0.0f));  // officially 0
  }
  // Big tensors: std 0.02 within 3 %, mean ~ 0.
  for (const char* key : {"mlm_score.decoder.weight",                           // normal, [1000, 16]
                          "text_transformer.embeddings.word_embeddings.weight",  // normal, [1000, 16]
                          "vit_model.layers.3.blocks.0.mlp.fc1.weight",         // trunc_normal, [256, 64]
                          "vit_model.layers.3.blocks.1.mlp.fc2.weight"}) {      // trunc_normal, [64, 256]
    const Stats s = stats(v.at(key));
    INFO(key);
    CHECK(std::abs(s.std - 0.02) < 0.02 * 0.03);
    CHECK(std::abs(s.mean) < 0.001);
    CHECK(s.max_abs < 2.0);
  }
  // Embeddings: N(0, 0.02), padding row (1) zero in words and positions.
  const Tensor<float> words = v.at("text_transformer.embeddings.word_embeddings.weight");
  CHECK(all_equal(words.narrow(0, 1, 1), 0.0f));
  CHECK_FALSE(all_equal(words.narrow(0, 2, 1), 0.0f));
  CHECK(std::abs(stats(words).std - 0.02) < 0.02 * 0.03);
  CHECK(all_equal(v.at("text_transformer.embeddings.position_embeddings.weight").narrow(0, 1, 1), 0.0f));
  // The patch embedding conv: U(-1/sqrt(48), 1/sqrt(48)) (PyTorch's default), std bound / sqrt(3).
  const double bound = 1.0 / std::sqrt(48.0);
  const Stats conv = stats(v.at("vit_model.patch_embed.proj.weight"));
  CHECK(conv.max_abs <= bound);
  CHECK(std::abs(conv.std - bound / std::sqrt(3.0)) < 0.1 * bound / std::sqrt(3.0));  // only 768 values
  // rank_output is itm_score.fc's match row, after init too.
  CHECK(max_diff(v.at("rank_output.weight"), v.at("itm_score.fc.weight").narrow(0, 1, 1)) == 0.0);
  CHECK(max_diff(v.at("rank_output.bias"), v.at("itm_score.fc.bias").narrow(0, 1, 1)) == 0.0);
  CHECK_FALSE(all_equal(v.at("itm_score.fc.weight"), 0.0f));

  // Same seed: the same values; another seed: others.
  auto* again = new Tiny;
  models::init_coarse(*again, 7);
  auto w = values_of(*again);
  for (const auto& [key, t] : v) CHECK_MESSAGE(max_diff(t, w.at(key)) == 0.0, key);
  auto* other = new Tiny;
  models::init_coarse(*other, 8);
  CHECK(max_diff(v.at("mlm_score.decoder.weight"), values_of(*other).at("mlm_score.decoder.weight")) > 0.01);
  // Parameters of the same shape get different values (one stream per key).
  CHECK(max_diff(v.at("cross_modal_image_pooler.dense.weight"), v.at("cross_modal_text_pooler.dense.weight")) > 0.01);
  delete m;
  delete again;
  delete other;
}

TEST_CASE("coarse init: the gate option changes the gates and nothing else") {
  auto* official = new Tiny;
  models::init_coarse(*official, 7);
  auto* opened = new Tiny;
  models::init_coarse(*opened, 7, {.gate = 0.625});
  const auto a = values_of(*official), b = values_of(*opened);
  REQUIRE(a.size() == b.size());
  int i2t = 0, t2i = 0;
  for (const auto& [key, t] : a) {
    INFO(key);
    const bool gate = key.ends_with("alpha_i2t") || key.ends_with("alpha_t2i");
    if (!gate) {
      CHECK(max_diff(t, b.at(key)) == 0.0);  // bit for bit the official values
      continue;
    }
    (key.ends_with("alpha_i2t") ? i2t : t2i) += 1;
    CHECK(all_equal(t, 0.0f));
    CHECK(all_equal(b.at(key), 0.625f));
  }
  // FIBER_SPEC: alpha_i2t in the 6 fused Swin blocks, alpha_t2i in all 12 text layers.
  CHECK(i2t == 6);
  CHECK(t2i == 12);
  const double nan = std::nan("");
  CHECK_THROWS_WITH_AS(models::init_coarse(*opened, 7, {.gate = nan}), doctest::Contains("gate start must be finite"),
                       fiber::Error);
  delete official;
  delete opened;
}

TEST_CASE("trunc_normal: bounds and the truncated std") {
  Generator g(3);
  const Tensor<double> t = models::trunc_normal<double>({200000}, g, 0.0, 1.0, -0.5, 0.5);
  double s2 = 0, m = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    s2 += t.data()[i] * t.data()[i];
    m = std::max(m, std::abs(t.data()[i]));
  }
  CHECK(m <= 0.5);
  // N(0, 1) truncated to [-0.5, 0.5]: variance 1 - 2 a phi(a) / (2 Phi(a) - 1) = 0.08053 at a = 0.5.
  CHECK(std::sqrt(s2 / double(t.numel())) == doctest::Approx(std::sqrt(0.080533)).epsilon(0.01));
  Generator g2(3);
  CHECK_THROWS_AS(models::trunc_normal<double>({4}, g2, 0.0, 1.0, 0.5, -0.5), Error);
}

// ---- the relative-position table resize ----------------------------------------------------------

TEST_CASE("relative-position tables: bicubic resize matches the official swin_adapt_position_encoding") {
  const io::Checkpoint ref = io::open_checkpoint(backbone("resize.safetensors"));
  const Tensor<float> up = models::resize_relative_position_table(io::load_tensor<float>(ref, "w4"), 121);
  const Tensor<float> down = models::resize_relative_position_table(io::load_tensor<float>(ref, "w6"), 49);
  // Same arithmetic in float32 up to summation order.
  CHECK(max_diff(up, io::load_tensor<float>(ref, "w4_to_w6")) <= 1e-5);
  CHECK(max_diff(down, io::load_tensor<float>(ref, "w6_to_w4")) <= 1e-5);
  CHECK_THROWS_WITH_AS(models::resize_relative_position_table(io::load_tensor<float>(ref, "w4"), 50),
                       doctest::Contains("(2w - 1)^2"), Error);
}

TEST_CASE("relative-position tables: a 128 checkpoint loads into a 192 model (and back) through load_options") {
  auto* small = new Tiny;
  models::init_coarse(*small, 1);
  const auto path = temp_file("w4.safetensors");
  nn::save_safetensors<float>(*small, path);
  auto* big = new Tiny192;
  const std::string key = "vit_model.layers.2.blocks.3.attn.relative_position_bias_table";
  const nn::LoadReport r = nn::load_state_dict<float>(*big, io::open_checkpoint(path), Tiny192::load_options());
  CHECK(r.adapted.size() == 24);  // every block's table
  const Tensor<float> expected = models::resize_relative_position_table(values_of(*small).at(key), 121);
  Tensor<float> got;
  big->visit("", [&](const std::string& k, nn::Entry<float> e) {
    if (k == key) got = e.var->value();
  });
  CHECK(max_diff(got, expected) == 0.0);
  // Without the adapter it is a mismatch naming the table.
  nn::LoadOptions<float> plain = Tiny192::load_options();
  plain.adapt = nullptr;
  CHECK_THROWS_WITH_AS(nn::load_state_dict<float>(*big, io::open_checkpoint(path), plain),
                       doctest::Contains("relative_position_bias_table: file [49, 4], module [121, 4]"), Error);
  std::filesystem::remove(path);
  delete small;
  delete big;
}

// ---- public backbones ---------------------------------------------------------------------------------

namespace {

// The official key of a backbone file's tensor, written out here independently of the loader.
std::string expected_key(const std::string& name, bool swin, bool timm) {
  if (swin) {
    static const std::regex timm_downsample(R"(^layers\.([123])\.downsample\.(.*)$)");
    std::smatch m;
    if (timm && std::regex_match(name, m, timm_downsample))
      return "vit_model.layers." + std::to_string(std::stoi(m[1].str()) - 1) + ".downsample." + m[2].str();
    return "vit_model." + name;
  }
  return "text_transformer." + (name.starts_with("roberta.") ? name.substr(8) : name);
}

struct Case {
  const char* swin;
  const char* roberta;
  models::SwinLayout layout;
  bool prefixed, pooler;
};

}  // namespace

TEST_CASE("backbones: every tensor of timm / Microsoft Swin and transformers RoBERTa lands under its official key") {
  const Case cases[] = {
      {"swin_timm.safetensors", "roberta_mlm/model.safetensors", models::SwinLayout::timm, true, false},
      {"swin_ms.pth", "roberta_model.bin", models::SwinLayout::microsoft, false, true},
  };
  auto* fresh = new Tiny;
  models::init_coarse(*fresh, 5);
  const auto init = values_of(*fresh);
  for (const Case& c : cases) {
    CAPTURE(c.swin);
    const io::Checkpoint swin = io::open_checkpoint(backbone(c.swin));
    const io::Checkpoint roberta = io::open_checkpoint(backbone(c.roberta));
    auto* m = new Tiny;
    models::init_coarse(*m, 5);
    const models::BackboneReport r = models::load_backbones(*m, swin, roberta);
    CHECK(r.swin_layout == c.layout);
    CHECK(r.roberta_prefixed == c.prefixed);
    CHECK(r.adapted.empty());
    const auto v = values_of(*m);
    std::map<std::string, bool> from_file;
    std::int64_t swin_weights = 0, roberta_weights = 0;
    const std::vector<std::pair<const io::Checkpoint*, bool>> files{{&swin, true}, {&roberta, false}};
    for (const auto& [ck, is_swin] : files) {
      for (const auto& [name, t] : read_all(*ck)) {
        if (name.starts_with("head.") || name.starts_with("lm_head.") || name.ends_with("attn_mask") ||
            name.ends_with("relative_position_index"))
          continue;
        const std::string key = expected_key(name, is_swin, c.layout == models::SwinLayout::timm);
        INFO(name, " -> ", key);
        REQUIRE(v.count(key) == 1);
        CHECK(max_diff(v.at(key), t) == 0.0);
        from_file[key] = true;
        ++(is_swin ? swin_weights : roberta_weights);
      }
    }
    CHECK(r.swin_loaded == swin_weights);
    CHECK(r.roberta_loaded == roberta_weights);
    // The patch mergings by name: timm's stage S + 1 opens with what ends our stage S.
    const std::string merge_file =
        c.layout == models::SwinLayout::timm ? "layers.1.downsample.reduction.weight" : "layers.0.downsample.reduction.weight";
    CHECK(max_diff(v.at("vit_model.layers.0.downsample.reduction.weight"), io::load_tensor<float>(swin, merge_file)) == 0.0);
    // Every other parameter keeps the official initialisation of the same seed.
    std::int64_t kept = 0;
    for (const auto& [key, t] : v) {
      if (from_file.count(key) || key.starts_with("rank_output.")) continue;
      INFO(key);
      CHECK(max_diff(t, init.at(key)) == 0.0);
      ++kept;
    }
    CHECK(std::int64_t(r.initialised.size()) == kept + 2);  // + the two tied rank_output views
    CHECK(from_file.count("text_transformer.pooler.dense.weight") == std::size_t(c.pooler));
    CHECK(from_file.count("vit_model.layers.3.blocks.0.attn.qkv_i2t.weight") == 0);
    CHECK(from_file.count("text_transformer.encoder.layer.6.crossattention_t2i.self.query.weight") == 0);
    CHECK(max_diff(v.at("rank_output.weight"), v.at("itm_score.fc.weight").narrow(0, 1, 1)) == 0.0);

    // fiber init's order (backbones, then the rest) gives the same values.
    auto* cli = new Tiny;
    models::init_from_backbones(*cli, swin, roberta, 5);
    const auto cv = values_of(*cli);
    for (const auto& [key, t] : v) CHECK_MESSAGE(max_diff(t, cv.at(key)) == 0.0, key);
    delete cli;

    // What is saved loads strictly into a fresh model with the same values.
    const auto path = temp_file("out.safetensors");
    nn::save_safetensors<float>(*m, path);
    auto* back = new Tiny;
    nn::load_state_dict<float>(*back, io::open_checkpoint(path), Tiny::load_options());
    const auto b = values_of(*back);
    for (const auto& [key, t] : v) CHECK_MESSAGE(max_diff(t, b.at(key)) == 0.0, key);
    std::filesystem::remove(path);
    delete back;
    delete m;
  }
  delete fresh;
}

TEST_CASE("backbones: a backbone of another window has its tables resized") {
  auto* m = new Tiny192;
  const models::BackboneReport r = models::load_backbones(*m, io::open_checkpoint(backbone("swin_timm.safetensors")),
                                                          io::open_checkpoint(backbone("roberta_model.bin")));
  CHECK(r.adapted.size() == 24);
  delete m;
}

TEST_CASE("backbones: bad inputs are one clear error") {
  const io::Checkpoint swin = io::open_checkpoint(backbone("swin_timm.safetensors"));
  const io::Checkpoint roberta = io::open_checkpoint(backbone("roberta_model.bin"));
  auto* m = new Tiny;
  // Swapped files.
  CHECK_THROWS_WITH_AS(models::load_backbones(*m, roberta, swin), doctest::Contains("not a Swin checkpoint"), Error);
  CHECK_THROWS_WITH_AS(models::load_backbones(*m, swin, swin), doctest::Contains("not a RoBERTa checkpoint"), Error);

  auto tensors = read_all(swin);
  const auto path = temp_file("bad.safetensors");
  SUBCASE("a missing tensor") {
    std::erase_if(tensors, [](const auto& p) { return p.first == "norm.weight" || p.first == "layers.2.blocks.4.mlp.fc1.bias"; });
    write_tensors(path, tensors);
    CHECK_THROWS_WITH_AS(models::load_backbones(*m, io::open_checkpoint(path), roberta),
                         doctest::Contains("2 missing (in the model, not in the file):\n    vit_model.layers.2.blocks.4.mlp.fc1.bias\n    vit_model.norm.weight"),
                         Error);
  }
  SUBCASE("an unexpected tensor") {
    tensors.emplace_back("layers.0.blocks.0.attn.extra.weight", Tensor<float>::zeros({2}));
    write_tensors(path, tensors);
    CHECK_THROWS_WITH_AS(models::load_backbones(*m, io::open_checkpoint(path), roberta),
                         doctest::Contains("'layers.0.blocks.0.attn.extra.weight' (would be 'vit_model.layers.0.blocks.0.attn.extra.weight')"),
                         Error);
  }
  SUBCASE("a wrong shape (another width)") {
    for (auto& [name, t] : tensors)
      if (name == "layers.2.blocks.7.mlp.fc2.weight") t = Tensor<float>::zeros({64, 256});
    write_tensors(path, tensors);
    CHECK_THROWS_WITH_AS(models::load_backbones(*m, io::open_checkpoint(path), roberta),
                         doctest::Contains("'layers.2.blocks.7.mlp.fc2.weight' -> vit_model.layers.2.blocks.7.mlp.fc2.weight: file [64, 256], module [32, 128]"),
                         Error);
  }
  SUBCASE("no patch mergings") {
    std::erase_if(tensors, [](const auto& p) { return p.first.find("downsample") != std::string::npos; });
    write_tensors(path, tensors);
    CHECK_THROWS_WITH_AS(models::load_backbones(*m, io::open_checkpoint(path), roberta),
                         doctest::Contains("without patch merging weights"), Error);
  }
  SUBCASE("a file that is no checkpoint") {
    std::ofstream(path) << "not weights at all\n";
    CHECK_THROWS_WITH_AS(io::open_checkpoint(path), doctest::Contains("not a PyTorch zip checkpoint"), Error);
  }
  std::filesystem::remove(path);
  delete m;
}
