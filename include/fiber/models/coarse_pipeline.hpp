#pragma once
// CoarsePipeline: coarse FIBER for a host program, with no knowledge of our internals needed.
// Loads weights (the official Lightning .ckpt or safetensors), preprocesses images (§4: bicubic
// resize to a square, ImageNet mean/std), tokenizes (<s> ... </s>, truncated to max_text_len,
// batches padded to their longest text) and computes what the coarse model computes at inference.
//
//   auto fiber = fiber::CoarsePipeline<fiber::models::FiberBaseCoarse384>::load("fiber.ckpt", "vocab.json", "merges.txt");
//   Tensor<float> img = fiber.embed_images(fiber.load_images({"cat.jpg"}));   // [1, 768], unit norm
//   Tensor<float> txt = fiber.embed_texts({"a cat", "a dog"});                // [2, 768]; reuse freely
//   Tensor<float> sim = matmul(img, txt.t());                                 // ITC similarity
//   auto m = fiber.match(fiber.load_images({"cat.jpg", "cat.jpg"}), {"a cat", "a dog"});  // pairwise
//
// Every method runs without recording gradients; tensors are float32 on the CPU. Thread count:
// fiber::set_num_threads (core/thread_pool.hpp).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fiber/autograd/grad_mode.hpp"
#include "fiber/core/storage_pool.hpp"
#include "fiber/io/image_decode.hpp"
#include "fiber/io/image_tensor.hpp"
#include "fiber/io/open_checkpoint.hpp"
#include "fiber/io/preprocess.hpp"
#include "fiber/models/fiber_coarse.hpp"
#include "fiber/ops/join.hpp"
#include "fiber/ops/softmax.hpp"
#include "fiber/text/tokenizer.hpp"

namespace fiber {

// Token ids and attention mask of a batch of texts: [B, L] each, L = the longest text.
struct TextBatch {
  Tensor<std::int64_t> ids, mask;
  std::int64_t size() const { return ids.defined() ? ids.size(0) : 0; }
};

// Pairwise scores of the fused model: one entry per (image, text) pair.
struct MatchScores {
  Tensor<float> itm_logits;       // [B, 2]: (no match, match)
  Tensor<float> itm_probability;  // [B]: softmax(itm_logits)[:, 1]
  Tensor<float> rank_score;       // [B]: rank_output(cls_feats), the official ITM retrieval score
  Tensor<float> itc_similarity;   // [B]: cosine of the pair's ITC embeddings
};

template <models::FiberCoarseConfig C>
class CoarsePipeline {
 public:
  using Model = models::FiberCoarse<float, C>;

  CoarsePipeline(std::shared_ptr<Model> model, text::Tokenizer tokenizer)
      : model_(std::move(model)), tokenizer_(std::move(tokenizer)) {}

  // Loads weights strictly (any problem is one error naming every key) and the tokenizer files.
  static CoarsePipeline load(const std::filesystem::path& weights, const std::filesystem::path& vocab,
                             const std::filesystem::path& merges) {
    auto model = std::make_shared<Model>();
    nn::load_state_dict<float>(*model, io::open_checkpoint(weights), Model::load_options());
    return CoarsePipeline(std::move(model), text::Tokenizer::from_files(vocab, merges));
  }

  Model& model() { return *model_; }
  const Model& model() const { return *model_; }
  const text::Tokenizer& tokenizer() const { return tokenizer_; }
  static constexpr int image_size() { return C.swin.image_size; }

  // ---- inputs --------------------------------------------------------------------------------
  // A decoded image -> [3, S, S] (bicubic resize to S x S, ImageNet mean / std).
  Tensor<float> preprocess(const io::Image& image) const { return io::to_tensor(io::preprocess_coarse(image, C.swin.image_size)); }
  // Image files -> [B, 3, S, S]; an unreadable file is an error naming it.
  Tensor<float> load_images(std::span<const std::filesystem::path> paths) const {
    std::vector<Tensor<float>> images;
    for (const auto& p : paths) images.push_back(preprocess(io::read_image(p)));
    FIBER_CHECK(!images.empty(), "load_images: no image paths given");
    return stack(images, 0);
  }
  Tensor<float> load_images(std::initializer_list<std::filesystem::path> paths) const {
    return load_images(std::span<const std::filesystem::path>(paths.begin(), paths.size()));
  }
  // Texts -> ids and mask, each text framed <s> ... </s>, cut to max_text_len tokens.
  TextBatch tokenize(std::span<const std::string> texts) const {
    FIBER_CHECK(!texts.empty(), "tokenize: no texts given");
    text::EncodeOptions opt;
    opt.max_length = std::size_t(C.max_text_len);
    opt.truncate = true;
    std::vector<text::Encoding> enc = tokenizer_.encode_batch(texts, opt);
    std::size_t L = 0;
    for (const auto& e : enc) L = std::max(L, e.size());
    TextBatch b{Tensor<std::int64_t>::full({std::int64_t(enc.size()), std::int64_t(L)}, tokenizer_.pad_id()),
                Tensor<std::int64_t>::zeros({std::int64_t(enc.size()), std::int64_t(L)})};
    for (std::size_t i = 0; i < enc.size(); ++i)
      for (std::size_t t = 0; t < enc[i].size(); ++t) {
        FIBER_CHECK(enc[i].ids[t] < C.text.vocab_size, "tokenize: token id ", enc[i].ids[t], " ('", enc[i].tokens[t],
                    "') is outside this model's vocabulary of ", C.text.vocab_size, " (vocab.json does not match the weights)");
        b.ids.data()[i * L + t] = enc[i].ids[t];
        b.mask.data()[i * L + t] = enc[i].attention_mask[t];
      }
    return b;
  }
  TextBatch tokenize(std::initializer_list<std::string> texts) const {
    return tokenize(std::span<const std::string>(texts.begin(), texts.size()));
  }

  // ---- outputs -------------------------------------------------------------------------------
  // pixels: [B, 3, S, S] -> ITC embeddings [B, H] (unit norm)
  Tensor<float> embed_images(const Tensor<float>& pixels) const {
    PoolScope reuse(*pool_);
    NoGrad guard;
    return model_->image_embedding(Var<float>(pixels)).value();
  }
  // -> ITC embeddings [B, H] (unit norm); compare with embed_images by dot product.
  Tensor<float> embed_texts(const TextBatch& texts) const {
    PoolScope reuse(*pool_);
    NoGrad guard;
    return model_->text_embedding(texts.ids, texts.mask).value();
  }
  Tensor<float> embed_texts(std::span<const std::string> texts) const { return embed_texts(tokenize(texts)); }
  Tensor<float> embed_texts(std::initializer_list<std::string> texts) const { return embed_texts(tokenize(texts)); }

  // Pair i = (pixels[i], texts[i]): the fused model's ITM scores only (itc_similarity left
  // undefined): what re-ranking a shortlist needs, one fused pass.
  MatchScores itm_scores(const Tensor<float>& pixels, const TextBatch& texts) const {
    FIBER_CHECK(pixels.dim() == 4 && pixels.size(0) == texts.size(), "match: ", pixels.dim() == 4 ? pixels.size(0) : 0,
                " images for ", texts.size(), " texts (pairs are matched one to one)");
    PoolScope reuse(*pool_);
    NoGrad guard;
    const Var<float> cls = model_->fuse(Var<float>(pixels), texts.ids, texts.mask).cls_feats;
    MatchScores s;
    s.itm_logits = model_->itm_logits(cls).value();
    s.itm_probability = softmax(s.itm_logits, -1).select(1, 1).contiguous();
    s.rank_score = model_->rank_score(cls).value().reshape({texts.size()});
    return s;
  }

  // Pair i = (pixels[i], texts[i]): the fused model's ITM scores and the pair's ITC similarity.
  MatchScores match(const Tensor<float>& pixels, const TextBatch& texts) const {
    PoolScope reuse(*pool_);
    MatchScores s = itm_scores(pixels, texts);
    s.itc_similarity = sum(embed_images(pixels) * embed_texts(texts), {1});
    return s;
  }
  MatchScores match(const Tensor<float>& pixels, std::span<const std::string> texts) const { return match(pixels, tokenize(texts)); }
  MatchScores match(const Tensor<float>& pixels, std::initializer_list<std::string> texts) const {
    return match(pixels, tokenize(texts));
  }

  // The MLM logits of the fused model for each (image, text) pair: [B, L, V].
  Tensor<float> mlm_logits(const Tensor<float>& pixels, const TextBatch& texts) const {
    PoolScope reuse(*pool_);
    NoGrad guard;
    return model_->mlm_logits(model_->fuse(Var<float>(pixels), texts.ids, texts.mask).text_feats).value();
  }

  // The tensor memory kept between calls: every call above takes its tensors from blocks the
  // earlier calls freed, so from the second batch of a shape on it touches no fresh pages (fresh
  // pages cost about 30% of FIBER-B's image path at batch 8, bench/bench_coarse on a Zen 3). The blocks stay
  // until release_buffers(); buffer_stats() says how much they hold.
  StoragePoolStats buffer_stats() const { return pool_->stats(); }
  void release_buffers() { pool_->trim(); }

 private:
  std::shared_ptr<Model> model_;
  text::Tokenizer tokenizer_;
  std::shared_ptr<StoragePool> pool_ = std::make_shared<StoragePool>();
};

}  // namespace fiber
