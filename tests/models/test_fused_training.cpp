// Training mode of the fused pass (FiberCoarse::fuse with ForwardContext::training): dropout and
// drop path make it stochastic, but the same generator seed gives the same outputs bit for bit
// at any thread count; evaluation mode is deterministic and equals a training forward with rates
// 0; gradients reach every parameter of the fused path. Also: drop path's per-sample keep rate
// and scale inside the model's residual, and RoBERTa's dropout of the attention probabilities.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fiber/core/rng.hpp"
#include "fiber/core/thread_pool.hpp"
#include "fiber/models/fiber_coarse.hpp"

using namespace fiber;

namespace {

// The tiny schedule of test_fused_gradcheck.cpp (stage 3: 2 fused blocks, block 1 shifted;
// stage 4: 2 fused blocks; 5 text layers, 4 fused) with drop path 0.3 (linear over the 6
// blocks) and text dropout 0.2; Rates0 is the same model with both rates 0.
constexpr models::FiberCoarseConfig Rates{
    .swin = {.image_size = 64, .embed_dim = 4, .depths = {1, 1, 2, 2}, .num_heads = {1, 1, 2, 2}, .mlp_ratio = 2,
             .drop_path_rate = 0.3},
    .text = {.vocab_size = 50, .hidden = 8, .heads = 2, .layers = 5, .intermediate = 16, .max_positions = 20,
             .dropout = 0.2},
    .num_fuse_block = 4,
    .hidden = 8,
    .mlm_vocab = 50,
    .max_text_len = 10,
};
constexpr models::FiberCoarseConfig Rates0 = [] {
  models::FiberCoarseConfig c = Rates;
  c.swin.drop_path_rate = 0;
  c.text.dropout = 0;
  return c;
}();

// Same keys in the same order for both configurations, hence the same weights for one seed. The
// alpha gates are set nonzero so that the cross-attention takes part.
template <class M>
void randomize_fused(M& m, std::uint64_t seed) {
  Generator gen(seed);
  m.visit("", [&](const std::string& key, nn::Entry<double> e) {
    if (e.role != nn::Role::parameter) return;
    Tensor<double> v = rand<double>(e.var->shape(), gen, -0.5, 0.5);
    if (key.ends_with("alpha_i2t") || key.ends_with("alpha_t2i")) v = rand<double>(e.var->shape(), gen, 0.5, 1.0);
    e.var->value().copy_(v);
  });
}

struct Batch {
  Var<double> images;
  Tensor<std::int64_t> ids, mask;
};

// 4 images and texts of 6 tokens, the last two texts padded.
Batch batch() {
  Generator gen(3);
  Batch b;
  b.images = Var<double>(randn<double>({4, 3, 64, 64}, gen));
  b.ids = Tensor<std::int64_t>::from_data({4, 6}, {0, 5, 6, 7, 8, 2, 0, 9, 10, 11, 12, 2,  //
                                                   0, 13, 14, 2, 1, 1, 0, 15, 2, 1, 1, 1});
  b.mask = Tensor<std::int64_t>::from_data({4, 6}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                                    1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0});
  return b;
}

// text_feats, image_feats and cls_feats of one fused forward, flattened.
template <class M>
std::vector<double> fused_outputs(const M& m, const Batch& b, const nn::ForwardContext<double>& ctx) {
  NoGrad guard;
  const auto f = m.fuse(b.images, b.ids, b.mask, ctx);
  std::vector<double> out = f.text_feats.value().to_vector();
  for (const auto& t : {f.image_feats.value(), f.cls_feats.value()}) {
    const auto v = t.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

template <class M>
std::vector<double> train_forward(const M& m, const Batch& b, std::uint64_t seed) {
  Generator gen(seed);
  nn::ForwardContext<double> ctx;
  ctx.training = true;
  ctx.rng = &gen;
  return fused_outputs(m, b, ctx);
}

// Restores the pool's size at the end of a test.
struct ThreadCount {
  int saved = num_threads();
  ~ThreadCount() { set_num_threads(saved); }
};

}  // namespace

// At these sizes few kernels split their work across threads (dropout splits only above 32768
// elements); the thread independence of dropout's masks at sizes that split is checked in
// tests/model_ops/test_dropout.cpp.
TEST_CASE("fused training forward: stochastic, reproducible from the seed, independent of the thread count") {
  models::FiberCoarse<double, Rates> m;
  randomize_fused(m, 1);
  const Batch b = batch();
  ThreadCount restore;
  set_num_threads(1);
  const std::vector<double> one = train_forward(m, b, 5);
  CHECK(train_forward(m, b, 5) == one);  // bit for bit
  set_num_threads(2);
  REQUIRE(num_threads() == 2);
  CHECK(train_forward(m, b, 5) == one);
  CHECK(train_forward(m, b, 6) != one);
  CHECK(fused_outputs(m, b, {}) != one);  // training differs from evaluation
  for (double v : one) REQUIRE(std::isfinite(v));
}

TEST_CASE("fused evaluation forward: deterministic, equal to the training forward with rates 0") {
  models::FiberCoarse<double, Rates> m;
  models::FiberCoarse<double, Rates0> m0;
  randomize_fused(m, 1);
  randomize_fused(m0, 1);
  const Batch b = batch();
  const std::vector<double> eval = fused_outputs(m, b, {});
  CHECK(fused_outputs(m, b, {}) == eval);
  CHECK(fused_outputs(m0, b, {}) == eval);
  CHECK(train_forward(m0, b, 5) == eval);  // rates 0: training draws nothing and changes nothing
}

TEST_CASE("fused training forward: gradients reach every parameter of the fused path") {
  models::FiberCoarse<double, Rates> m;
  randomize_fused(m, 1);
  const Batch b = batch();
  Generator gen(5);
  nn::ForwardContext<double> ctx;
  ctx.training = true;
  ctx.rng = &gen;
  const auto f = m.fuse(b.images, b.ids, b.mask, ctx);
  Generator wgen(9);
  Var<double> loss = sum(Var<double>(f.text_feats * randn<double>(f.text_feats.shape(), wgen)));
  loss = Var<double>(loss + sum(Var<double>(f.image_feats * randn<double>(f.image_feats.shape(), wgen))));
  loss = Var<double>(loss + sum(Var<double>(f.cls_feats * randn<double>(f.cls_feats.shape(), wgen))));
  loss.backward();

  // Not on the fused path: the ITC transforms, poolers and temperature, the final Swin norm
  // (image-only path), the heads, the text pooler, the unused LayerNorm of each text
  // cross-attention, alpha_t2i of the plain text layer 0 and the output LayerNorm of the last
  // text layer (skipped on the fused path).
  auto off_path = [](const std::string& key) {
    for (const char* p : {"temp", "cross_modal_text_transform_itc.", "cross_modal_image_transform_itc.",
                          "cross_modal_image_pooler_itc.", "cross_modal_text_pooler_itc.", "vit_model.norm.",
                          "mlm_score.", "itm_score.", "text_transformer.pooler.",
                          "text_transformer.encoder.layer.0.alpha_t2i",
                          "text_transformer.encoder.layer.4.output.LayerNorm."})
      if (key.starts_with(p)) return true;
    return key.find("crossattention_t2i.output.LayerNorm.") != std::string::npos;
  };
  int on = 0, off = 0;
  for (auto& [key, var] : nn::named_parameters<double>(m)) {
    const Tensor<double>& g = var->grad();
    double norm = 0;
    bool finite = true;
    if (g.defined())
      for (double v : g.to_vector()) {
        norm += v * v;
        finite = finite && std::isfinite(v);
      }
    if (off_path(key)) {
      ++off;
      CHECK_MESSAGE(norm == 0.0, key, " is not on the fused path but has a gradient");
    } else {
      ++on;
      CHECK_MESSAGE(finite, key, ": gradient not finite");
      CHECK_MESSAGE(norm > 0.0, key, ": no gradient in training mode");
    }
  }
  MESSAGE(on, " parameters on the fused path, ", off, " off it");
  CHECK(on > 100);
}

TEST_CASE("drop path in the model: the linear schedule, per-sample keep rate 1 - p, kept samples scaled by 1 / (1 - p)") {
  models::FiberCoarse<double, Rates> m;
  // 6 blocks, rate 0.3 * global index / 5: the fused stage-4 block 1 (global 5) has 0.3.
  CHECK(m.vit_model.layers[0].blocks[0].drop_path == 0.0);
  CHECK(m.vit_model.layers[2].blocks[1].drop_path == doctest::Approx(0.3 * 3 / 5));
  const double p = m.vit_model.layers[3].blocks[1].drop_path;
  CHECK(p == doctest::Approx(0.3));

  // x + DropPath(branch) with x = 0, branch = 1: each of n samples is 0 or 1 / (1 - p).
  const std::int64_t n = 20000;
  Generator gen(4);
  nn::ForwardContext<double> ctx;
  ctx.training = true;
  ctx.rng = &gen;
  const Var<double> x(Tensor<double>::zeros({n, 2, 3})), branch(Tensor<double>::ones({n, 2, 3}));
  const auto y = models::residual_add(x, branch, p, ctx).value().to_vector();
  std::int64_t kept = 0, partial = 0, misscaled = 0;
  for (std::int64_t s = 0; s < n; ++s) {
    const double v = y[std::size_t(s * 6)];
    for (int j = 1; j < 6; ++j) partial += y[std::size_t(s * 6 + j)] != v;  // whole samples only
    if (v != 0) {
      ++kept;
      misscaled += std::abs(v * (1 - p) - 1) > 1e-15;
    }
  }
  CHECK(partial == 0);
  CHECK(misscaled == 0);
  // Binomial(n, 0.7): standard deviation sqrt(n p (1 - p)) ~ 65; allow 5 of them.
  CHECK(std::abs(double(kept) - n * (1 - p)) < 5 * std::sqrt(n * p * (1 - p)));
  CHECK(models::residual_add(x, branch, p, nn::ForwardContext<double>{}).value().to_vector() ==
        std::vector<double>(std::size_t(n * 6), 1.0));  // evaluation: x + branch
}

TEST_CASE("RoBERTa attention in training drops attention probabilities, then the dense output (HF order)") {
  const models::RobertaConfig c{.hidden = 8, .heads = 2, .dropout = 0.25};
  models::RobertaAttention<double> attn(c, c.hidden);
  Generator init(8);
  attn.visit("", [&](const std::string&, nn::Entry<double> e) {
    if (e.role == nn::Role::parameter) e.var->value().copy_(rand<double>(e.var->shape(), init, -0.5, 0.5));
  });
  const Var<double> x(rand<double>({2, 5, 8}, init, -1, 1));
  Tensor<std::int64_t> m = Tensor<std::int64_t>::ones({2, 5});
  m.data()[9] = 0;
  const Tensor<double> mask = models::extended_attention_mask<double>(m);

  Generator gen(77);
  nn::ForwardContext<double> ctx;
  ctx.training = true;
  ctx.rng = &gen;
  NoGrad guard;
  const auto got = attn(x, x, mask, ctx).value().to_vector();

  // HF RobertaSelfAttention: probs = dropout(softmax(q kᵀ / sqrt(d) + mask)); RobertaSelfOutput:
  // dropout(dense(probs v)). Both with attention_probs_dropout_prob = hidden_dropout_prob here.
  Generator ref(77);
  const Var<double> q = models::split_heads(attn.query(x), 2), k = models::split_heads(attn.key(x), 2),
                    v = models::split_heads(attn.value(x), 2);
  Var<double> probs = attention_softmax(matmul(q, k.transpose(-1, -2)), 0.5, Var<double>(), mask);
  probs = fiber::dropout(probs, 0.25, true, ref);
  const auto want = fiber::dropout(attn.dense(models::merge_heads(matmul(probs, v))), 0.25, true, ref).value().to_vector();
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
  CHECK(gen.offset() == ref.offset());  // the same draws, in the same order
}
