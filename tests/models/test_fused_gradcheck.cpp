// Float64 gradchecks of the fused blocks of coarse FIBER (FIBER_SPEC §1): one fused Swin block
// (shifted, so the -100 window mask is on the path) given the text it cross-attends to, one fused
// RoBERTa layer given the image tokens, and the last text layer of the fused path (no output
// LayerNorm). Each check runs fiber::gradcheck (central differences, eps 1e-6) on the block's
// inputs and on EVERY element of EVERY parameter of the block, one tensor at a time so that a
// failure names the tensor. All parameters are random, the alpha gates included (their init is
// 0, which would cut the cross-attention out of the gradient), and the text has padding, so the
// -10000 text mask is on the path too.
//
// Tolerance: |analytic - numeric| <= atol + rtol |numeric| with atol 1e-7, rtol 1e-6. Measured
// worst |analytic - numeric| / tolerance: 0.18 (stage-3 block), 0.34 (stage-4 block), 0.04
// (fused text layer), 0.06 (last text layer); each case prints its own with -s. A 1e-4 relative
// error in the attention softmax's backward fails every case.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "fiber/autograd/gradcheck.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/models/fiber_coarse.hpp"

using namespace fiber;

namespace {

// Image 64 (window 2): stage maps 16, 8, 4, 2 of widths 4, 8, 16, 32. Stage 3 has two blocks,
// both fused (num_fuse_block 4 = 2 in stage 3 + 2 in stage 4), block 1 shifted by 1 on the 4x4
// map; stage 4 (2x2 = one window) never shifts. Text: 5 layers of width 8, 2 heads; layer 0
// plain, layers 1-2 cross-attend to stage 3 (width 16), layers 3-4 to stage 4 (width 32).
constexpr models::FiberCoarseConfig FusedTiny{
    .swin = {.image_size = 64, .embed_dim = 4, .depths = {1, 1, 2, 2}, .num_heads = {1, 1, 2, 2}, .mlp_ratio = 2},
    .text = {.vocab_size = 50, .hidden = 8, .heads = 2, .layers = 5, .intermediate = 16, .max_positions = 20},
    .num_fuse_block = 4,
    .hidden = 8,
    .mlm_vocab = 50,
    .max_text_len = 10,
};
using Model = models::FiberCoarse<double, FusedTiny>;

constexpr GradcheckOptions kTolerance{.eps = 1e-6, .atol = 1e-7, .rtol = 1e-6};

// Every parameter uniform in [-0.5, 0.5], LayerNorm weights in [0.5, 1.5], the alpha gates in
// [0.5, 1] (nonzero, so the cross-attention contributes to the output and the gradients).
void randomize(Model& m, std::uint64_t seed) {
  Generator gen(seed);
  m.visit("", [&](const std::string& key, nn::Entry<double> e) {
    if (e.role != nn::Role::parameter) return;
    Tensor<double> v = rand<double>(e.var->shape(), gen, -0.5, 0.5);
    if (key.ends_with("alpha_i2t") || key.ends_with("alpha_t2i")) v = rand<double>(e.var->shape(), gen, 0.5, 1.0);
    const bool norm_weight = key.ends_with(".weight") && (key.find("norm") != std::string::npos ||
                                                          key.find("LayerNorm") != std::string::npos);
    if (norm_weight) v = rand<double>(e.var->shape(), gen, 0.5, 1.5);
    e.var->value().copy_(v);
  });
}

template <class M>
std::vector<std::pair<std::string, Var<double>*>> parameters_of(M& module) {
  return nn::named_parameters<double>(module);
}

// [B, 1, 1, L] text mask: sample 0 full, sample 1 with its last two tokens padded.
Tensor<double> text_mask(std::int64_t L) {
  Tensor<std::int64_t> m = Tensor<std::int64_t>::ones({2, L});
  m.data()[L + L - 1] = 0;
  m.data()[L + L - 2] = 0;
  return models::extended_attention_mask<double>(m);
}

struct Totals {
  double worst = 0;
  std::int64_t elements = 0;
  int tensors = 0;
};

// Gradchecks `block` (a function of the inputs' current Vars) with respect to input `i` of
// `inputs`, every element.
template <class Block>
void check_input(const std::string& name, std::vector<Var<double>>& inputs, std::size_t i, const Block& block,
                 Totals& t) {
  const Var<double> saved = inputs[i];
  const GradcheckResult r = gradcheck(
      [&](std::span<const Var<double>> v) {
        inputs[i] = v[0];
        return block();
      },
      {saved.value()}, kTolerance);
  inputs[i] = saved;
  CHECK_MESSAGE(r.ok, name, ": ", r.message);
  t.worst = std::max(t.worst, r.worst);
  t.elements += saved.numel();
  ++t.tensors;
}

// The same for every parameter of `params` (swapped into the module for the check).
template <class Block>
void check_parameters(std::vector<std::pair<std::string, Var<double>*>>& params, const Block& block, Totals& t) {
  for (auto& [name, var] : params) {
    const Var<double> saved = *var;
    const GradcheckResult r = gradcheck(
        [&, var = var](std::span<const Var<double>> v) {
          *var = v[0];
          return block();
        },
        {saved.value()}, kTolerance);
    *var = saved;
    CHECK_MESSAGE(r.ok, name, ": ", r.message);
    t.worst = std::max(t.worst, r.worst);
    t.elements += saved.numel();
    ++t.tensors;
  }
}

void report(const std::string& what, const Totals& t) {
  MESSAGE(what, ": ", t.tensors, " tensors, ", t.elements, " elements; worst |error| / tolerance ", t.worst);
}

// The gradient of sum(w * out) with respect to `x` is not zero: the path through x is live.
template <class Block>
double grad_norm(Var<double>& x, const Block& block) {
  Var<double> saved = x;
  x = Var<double>(saved.value().clone(), true);
  Generator gen(7);
  const Var<double> out = block();
  sum(Var<double>(out * randn<double>(out.shape(), gen))).backward();
  const Tensor<double> grad = x.grad();
  x = saved;
  if (!grad.defined()) return 0;  // x took no part
  const auto g = grad.to_vector();
  double n = 0;
  for (double v : g) n += v * v;
  return std::sqrt(n);
}

}  // namespace

TEST_CASE("fused Swin block (stage 3, shifted): gradcheck of image tokens, text and every parameter") {
  Model m;
  randomize(m, 11);
  const auto& block = m.vit_model.layers[2].blocks[1];
  REQUIRE(block.attn.fused);
  REQUIRE(block.shift == 1);                 // the shifted-window path, with the -100 mask
  REQUIRE(block.attn_mask.defined());
  Generator gen(12);
  const std::int64_t Lt = 5, side = FusedTiny.swin.stage_side(2), C = FusedTiny.swin.stage_dim(2);
  std::vector<Var<double>> in{Var<double>(rand<double>({2, side * side, C}, gen, -1, 1)),
                              Var<double>(rand<double>({2, Lt, FusedTiny.text.hidden}, gen, -1, 1))};
  const Tensor<double> mask = text_mask(Lt);
  const nn::ForwardContext<double> ctx;
  auto run = [&] { return m.image_block(2, 1, in[0], ctx, "", models::TextContext<double>{&in[1], &mask}); };

  // The cross-attention takes part: the output depends on the text and on alpha_i2t.
  CHECK(grad_norm(in[1], run) > 1e-3);
  CHECK(grad_norm(m.vit_model.layers[2].blocks[1].attn.alpha_i2t, run) > 1e-3);

  Totals t;
  check_input("image tokens", in, 0, run, t);
  check_input("text tokens", in, 1, run, t);
  auto params = parameters_of(m.vit_model.layers[2].blocks[1]);
  CHECK(params.size() == 22);  // norm1, rel. table, alpha, qkv, proj, qkv_text_i2t, qkv_i2t, proj_i2t, norm_i2t_i, norm2, fc1, fc2
  check_parameters(params, run, t);
  report("fused Swin block", t);
}

TEST_CASE("fused Swin block (stage 4, one window): gradcheck of image tokens, text and every parameter") {
  Model m;
  randomize(m, 21);
  const auto& block = m.vit_model.layers[3].blocks[1];
  REQUIRE(block.attn.fused);
  REQUIRE(block.shift == 0);  // the map is one window: never shifted (the official rule)
  Generator gen(22);
  const std::int64_t Lt = 4, side = FusedTiny.swin.stage_side(3), C = FusedTiny.swin.stage_dim(3);
  std::vector<Var<double>> in{Var<double>(rand<double>({2, side * side, C}, gen, -1, 1)),
                              Var<double>(rand<double>({2, Lt, FusedTiny.text.hidden}, gen, -1, 1))};
  const Tensor<double> mask = text_mask(Lt);
  const nn::ForwardContext<double> ctx;
  auto run = [&] { return m.image_block(3, 1, in[0], ctx, "", models::TextContext<double>{&in[1], &mask}); };
  CHECK(grad_norm(in[1], run) > 1e-3);

  Totals t;
  check_input("image tokens", in, 0, run, t);
  check_input("text tokens", in, 1, run, t);
  auto params = parameters_of(m.vit_model.layers[3].blocks[1]);
  check_parameters(params, run, t);
  report("fused Swin block, stage 4", t);
}

TEST_CASE("fused RoBERTa layer: gradcheck of text, image tokens and every parameter") {
  Model m;
  randomize(m, 31);
  const int layer = 2;  // paired with stage-3 block 1: cross-attends to width-16 image tokens
  REQUIRE(m.text_transformer.layers[layer].fused);
  Generator gen(32);
  const std::int64_t Lt = 5, side = FusedTiny.swin.stage_side(2), C = FusedTiny.swin.stage_dim(2);
  std::vector<Var<double>> in{Var<double>(rand<double>({2, Lt, FusedTiny.text.hidden}, gen, -1, 1)),
                              Var<double>(rand<double>({2, side * side, C}, gen, -1, 1))};
  const Tensor<double> mask = text_mask(Lt);
  const nn::ForwardContext<double> ctx;
  auto run = [&] { return m.text_layer(layer, in[0], mask, ctx, &in[1], true); };
  CHECK(grad_norm(in[1], run) > 1e-3);
  CHECK(grad_norm(m.text_transformer.layers[layer].alpha_t2i, run) > 1e-3);

  Totals t;
  check_input("text tokens", in, 0, run, t);
  check_input("image tokens", in, 1, run, t);
  auto params = parameters_of(m.text_transformer.layers[layer]);
  // alpha, self q/k/v/dense/LayerNorm, cross q/k/v/dense/LayerNorm (unused: its gradient is 0 and
  // so is the numeric one), intermediate, output, output LayerNorm.
  CHECK(params.size() == 27);
  check_parameters(params, run, t);
  report("fused RoBERTa layer", t);
}

TEST_CASE("last text layer on the fused path (no output LayerNorm): gradcheck of every input and parameter") {
  Model m;
  randomize(m, 41);
  const int layer = FusedTiny.text.layers - 1;  // paired with stage-4 block 1: width-32 image tokens
  REQUIRE(m.text_transformer.layers[layer].fused);
  Generator gen(42);
  const std::int64_t Lt = 6, side = FusedTiny.swin.stage_side(3), C = FusedTiny.swin.stage_dim(3);
  std::vector<Var<double>> in{Var<double>(rand<double>({2, Lt, FusedTiny.text.hidden}, gen, -1, 1)),
                              Var<double>(rand<double>({2, side * side, C}, gen, -1, 1))};
  const Tensor<double> mask = text_mask(Lt);
  const nn::ForwardContext<double> ctx;
  auto run = [&] { return m.text_layer(layer, in[0], mask, ctx, &in[1], false); };
  CHECK(grad_norm(in[1], run) > 1e-3);

  // Without the output LayerNorm its parameters take no part: gradient 0 (checked numerically
  // below too), and the output differs from the normed one.
  {
    auto& norm = m.text_transformer.layers[layer].output_norm;
    CHECK(grad_norm(norm.weight, run) == 0.0);
    NoGrad guard;
    const Tensor<double> a = run().value(), b = m.text_layer(layer, in[0], mask, ctx, &in[1], true).value();
    CHECK(a.to_vector() != b.to_vector());
  }

  Totals t;
  check_input("text tokens", in, 0, run, t);
  check_input("image tokens", in, 1, run, t);
  auto params = parameters_of(m.text_transformer.layers[layer]);
  check_parameters(params, run, t);
  report("last fused text layer", t);
}

// Training mode with the masks fixed: every call draws from a fresh Generator(seed), so dropout
// and drop path make the same decisions in the analytic pass and in every finite difference.
// FusedTiny keeps the default rates (drop path 0.1 linear over the blocks, text dropout 0.1).
TEST_CASE("training mode, fixed seed: gradcheck of a fused Swin block and a fused text layer") {
  Model m;
  randomize(m, 51);
  Generator gen(52);
  const std::int64_t Lt = 5, side = FusedTiny.swin.stage_side(2), C = FusedTiny.swin.stage_dim(2);
  std::vector<Var<double>> in{Var<double>(rand<double>({2, side * side, C}, gen, -1, 1)),
                              Var<double>(rand<double>({2, Lt, FusedTiny.text.hidden}, gen, -1, 1))};
  const Tensor<double> mask = text_mask(Lt);
  auto train = [](Generator& g) {
    nn::ForwardContext<double> ctx;
    ctx.training = true;
    ctx.rng = &g;
    return ctx;
  };
  auto image = [&] {
    Generator g(53);
    return m.image_block(2, 1, in[0], train(g), "", models::TextContext<double>{&in[1], &mask});
  };
  auto text = [&] {
    Generator g(54);
    return m.text_layer(2, in[1], mask, train(g), &in[0], true);
  };
  {
    NoGrad guard;  // dropout is on: training differs from evaluation
    CHECK(text().value().to_vector() != m.text_layer(2, in[1], mask, {}, &in[0], true).value().to_vector());
  }
  Totals ti, tt;
  check_input("image tokens", in, 0, image, ti);
  check_input("text tokens", in, 1, image, ti);
  auto image_params = parameters_of(m.vit_model.layers[2].blocks[1]);
  check_parameters(image_params, image, ti);
  report("fused Swin block, training", ti);
  check_input("image tokens", in, 0, text, tt);
  check_input("text tokens", in, 1, text, tt);
  auto text_params = parameters_of(m.text_transformer.layers[2]);
  check_parameters(text_params, text, tt);
  report("fused RoBERTa layer, training", tt);
}
