#pragma once
// Coarse FIBER pre-training as a Trainer task (train/task.hpp): batches from a PrefetchLoader,
// MLM masking, the ITC + ITM + MLM objective (losses/coarse_pretrain.hpp) with its queue, and
// retrieval evaluation on a held-out set.
//
//   train::PrefetchLoader loader(train_set, tokenizer, {.batch_size = 32, .image_size = 64});
//   train::CoarsePretrainTask<models::FiberDemoCoarse> task(model, loader, options);
//   task.set_evaluation(train::load_eval_set(val_set, tokenizer, 64, 40));
//   train::Trainer trainer(task, trainer_options);
//   trainer.run();
//
// Randomness: MLM masking, the hard-negative draws and dropout all come from the Trainer's
// generator; the queue (initialised from `queue_seed`, as the official N(0, 1) buffers) and the
// loader's position are saved in checkpoints, so a resumed run continues exactly.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fiber/losses/coarse_pretrain.hpp"
#include "fiber/losses/mlm_masking.hpp"
#include "fiber/nn/module.hpp"
#include "fiber/train/prefetch_loader.hpp"
#include "fiber/train/retrieval_eval.hpp"
#include "fiber/train/task.hpp"

namespace fiber::train {

struct CoarsePretrainOptions {
  losses::CoarseObjectives objectives;  // ITC, ITM, MLM (all on: the official pre-training)
  std::int64_t queue_size = 0;          // ITC queue entries (official 4096; 0: none)
  std::uint64_t queue_seed = 0;         // its N(0, 1) initial content
  bool normalise_queue = false;         // unit-length initial features (ALBEF) instead of the official N(0, 1)
  losses::MlmMaskingOptions masking;    // mask id, vocabulary and special ids of the tokenizer
  // Back-propagate each loss as soon as it is computed (same gradients; the graph of one pass at
  // a time instead of three). Not with objectives.share_image_prefix (one backward of the total).
  bool backward_each_loss = true;
  bool eval_itm = true;                 // evaluate(): also ITM recall (a fused pass per pair)
};

// The MLM masking options for a tokenizer: its <mask> id, its vocabulary, its special tokens.
inline losses::MlmMaskingOptions masking_for(const text::Tokenizer& tok, double probability = 0.15) {
  losses::MlmMaskingOptions o;
  o.probability = probability;
  o.vocab_size = std::int64_t(tok.vocab_size());
  o.mask_id = tok.mask_id();
  o.special_ids = {tok.bos_id(), tok.pad_id(), tok.eos_id(), tok.unk_id(), tok.mask_id()};
  return o;
}

// A held-out retrieval set: every image once, every caption once.
struct EvalSet {
  Tensor<float> images;                  // [Ni, 3, S, S]
  Tensor<std::int64_t> ids, masks;       // [Nt, L]
  std::vector<std::int64_t> text_image;  // [Nt]: the image of each caption
  bool empty() const { return !images.defined(); }
};

// Decodes and preprocesses every image of `data` and tokenizes every caption (<s> ... </s>, cut at
// max_text_len keeping </s>); an unreadable image is a fiber::Error naming it.
inline EvalSet load_eval_set(const CaptionDataset& data, const text::Tokenizer& tok, int image_size, std::size_t max_text_len) {
  FIBER_CHECK(data.size() > 0, "load_eval_set: the evaluation set is empty");
  PrefetchOptions o;
  o.batch_size = int(data.size());
  o.image_size = image_size;
  o.max_text_len = max_text_len;
  o.shuffle = false;
  o.threads = 1;
  o.queue_batches = 1;
  PrefetchLoader loader(data, tok, o);
  const DataBatch all = loader.next();
  EvalSet e;
  // The batch holds one row per caption; keep each image once.
  std::vector<std::int64_t> first_row(data.images.size(), -1);
  for (std::int64_t r = 0; r < all.size(); ++r)
    if (first_row[all.image_indices[std::size_t(r)]] < 0) first_row[all.image_indices[std::size_t(r)]] = r;
  std::vector<Tensor<float>> images;
  std::vector<std::int64_t> new_index(data.images.size(), -1);
  for (std::size_t i = 0; i < first_row.size(); ++i)
    if (first_row[i] >= 0) {
      new_index[i] = std::int64_t(images.size());
      images.push_back(all.images.narrow(0, first_row[i], 1));
    }
  e.images = concat(images, 0);
  e.ids = all.ids;
  e.masks = all.attention_mask;
  for (std::int64_t r = 0; r < all.size(); ++r) e.text_image.push_back(new_index[all.image_indices[std::size_t(r)]]);
  return e;
}

template <models::FiberCoarseConfig C>
class CoarsePretrainTask {
 public:
  using Model = models::FiberCoarse<float, C>;

  CoarsePretrainTask(Model& model, PrefetchLoader& loader, CoarsePretrainOptions options)
      : model_(model), loader_(loader), options_(std::move(options)) {
    FIBER_CHECK(options_.queue_size >= 0 && options_.queue_size <= (std::int64_t(1) << 24),
                "coarse pre-training: queue size ", options_.queue_size, " outside [0, 2^24]");
    FIBER_CHECK(options_.masking.vocab_size <= C.text.vocab_size, "coarse pre-training: the tokenizer has ",
                options_.masking.vocab_size, " tokens, the model's embedding only ", C.text.vocab_size);
    if (options_.queue_size > 0) {
      Generator g(options_.queue_seed);
      queue_ = losses::CoarseQueue<float>(options_.queue_size, C.hidden, C.swin.image_size, C.max_text_len, g,
                                          C.text.pad_token_id, options_.normalise_queue);
    }
  }

  // Every parameter under its official name, as the official named_parameters(): rank_output (a
  // view of itm_score.fc's match row) included, so that checkpoints load with the normal loader;
  // it never gets a gradient of its own, and AdamW skips parameters without one.
  std::vector<std::pair<std::string, Var<float>*>> parameters() {
    std::vector<std::pair<std::string, Var<float>*>> out;
    model_.visit("", [&](const std::string& key, nn::Entry<float> e) {
      if (e.role == nn::Role::parameter || e.role == nn::Role::tied) out.emplace_back(key, e.var);
    });
    return out;
  }

  StepOutput forward_backward(Generator& gen) {
    const DataBatch data = loader_.next();
    losses::CoarseBatch<float> batch{data.images, data.ids, data.attention_mask, {}, {}};
    if (options_.objectives.mlm) {
      losses::MlmBatch m = losses::mask_for_mlm(data.ids, gen, options_.masking);
      batch.mlm_ids = std::move(m.ids);
      batch.mlm_labels = std::move(m.labels);
    }
    nn::ForwardContext<float> ctx;
    ctx.training = true;
    ctx.rng = &gen;
    std::function<void(const std::string&, const Var<float>&)> each;
    const bool each_loss = options_.backward_each_loss && !options_.objectives.share_image_prefix;
    if (each_loss) each = [](const std::string&, const Var<float>& loss) { loss.backward(); };
    last_ = losses::coarse_pretrain_losses(model_, batch, queue_, gen, ctx, options_.objectives, nullptr, each);
    if (!each_loss) last_.total.backward();
    StepOutput out;
    out.losses["loss"] = double(last_.total.value().item());
    if (last_.itc.defined()) out.losses["itc"] = double(last_.itc.value().item());
    if (last_.itm.defined()) out.losses["itm"] = double(last_.itm.value().item());
    if (last_.mlm.defined()) out.losses["mlm"] = double(last_.mlm.value().item());
    out.samples = batch.size();
    return out;
  }

  // The official step clamps the temperature before its ITC forward (done there); nothing here.
  void after_update() {}

  void save_state(TaskState& out) const {
    const LoaderState pos = loader_.state();
    out.json["loader"] = {{"epoch", pos.epoch}, {"batch", pos.batch}};
    out.json["queue"] = {{"size", queue_.size()}, {"ptr", queue_.ptr}, {"total", queue_.total}};
    if (queue_.enabled()) {
      out.put("image_queue", queue_.image_feats);
      out.put("text_queue", queue_.text_feats);
      out.put("image_input_queue", queue_.images);
      // token ids are exact in float32 below 2^24 (vocabularies are far smaller)
      out.put("text_input_queue", queue_.text_ids.template to<float>());
      out.put("text_input_mask_queue", queue_.text_masks.template to<float>());
    }
  }
  void load_state(const TaskState& in) {
    const auto& q = in.json.at("queue");
    FIBER_CHECK(q.at("size").get<std::int64_t>() == queue_.size(), "coarse pre-training: the checkpoint's queue has ",
                q.at("size").get<std::int64_t>(), " entries, this run ", queue_.size());
    if (queue_.enabled()) {
      auto take = [&](const char* name, const Tensor<float>& into) {
        const Tensor<float>& t = in.get(name);
        FIBER_CHECK(t.shape() == into.shape(), "coarse pre-training: checkpoint ", name, " is ", t.shape(), ", expected ",
                    into.shape());
        into.copy_(t);
      };
      take("image_queue", queue_.image_feats);
      take("text_queue", queue_.text_feats);
      take("image_input_queue", queue_.images);
      const Tensor<float>& ids = in.get("text_input_queue");
      const Tensor<float>& masks = in.get("text_input_mask_queue");
      FIBER_CHECK(ids.shape() == queue_.text_ids.shape() && masks.shape() == queue_.text_masks.shape(),
                  "coarse pre-training: checkpoint text queue is ", ids.shape(), ", expected ", queue_.text_ids.shape());
      queue_.text_ids.copy_(ids);
      queue_.text_masks.copy_(masks);
      queue_.ptr = q.at("ptr").get<std::int64_t>();
      queue_.total = q.at("total").get<std::int64_t>();
    }
    const auto& l = in.json.at("loader");
    loader_.restore({l.at("epoch").get<std::uint64_t>(), l.at("batch").get<std::uint64_t>()});
  }

  void set_evaluation(EvalSet set) { eval_ = std::move(set); }

  // Retrieval recall on the evaluation set (empty map without one): ITC, and ITM when enabled.
  std::map<std::string, double> evaluate() {
    std::map<std::string, double> m;
    if (eval_.empty()) return m;
    const RetrievalRecall itc = retrieval_recall(itc_scores(model_, eval_.images, eval_.ids, eval_.masks), eval_.text_image);
    m["image_retrieval_r1"] = itc.image_r1, m["image_retrieval_r5"] = itc.image_r5;
    m["text_retrieval_r1"] = itc.text_r1, m["text_retrieval_r5"] = itc.text_r5;
    if (options_.eval_itm) {
      const RetrievalRecall itm =
          retrieval_recall(itm_scores(model_, eval_.images, eval_.ids, eval_.masks), eval_.text_image);
      m["itm_image_retrieval_r1"] = itm.image_r1, m["itm_image_retrieval_r5"] = itm.image_r5;
      m["itm_text_retrieval_r1"] = itm.text_r1, m["itm_text_retrieval_r5"] = itm.text_r5;
    }
    return m;
  }

  const losses::CoarseLosses<float>& last_losses() const { return last_; }
  const losses::CoarseQueue<float>& queue() const { return queue_; }

 private:
  Model& model_;
  PrefetchLoader& loader_;
  CoarsePretrainOptions options_;
  losses::CoarseQueue<float> queue_;
  EvalSet eval_;
  losses::CoarseLosses<float> last_;
};

}  // namespace fiber::train
