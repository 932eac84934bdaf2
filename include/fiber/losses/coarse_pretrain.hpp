#pragma once
// The coarse pre-training objective of FIBER (FIBER_SPEC §2; official FIBERTransformerSS.forward
// with the tasks mlm, itc, itm): in the official order
//   1. MLM: the fused pass on (images, masked ids) -> mlm_score(text_feats) -> CE over masked tokens;
//   2. ITC: temp clamped to [0.001, 1], the unimodal passes, contrastive loss against batch + queue;
//      hard negatives drawn from the ITC similarities; the batch then enters the queue;
//   3. ITM: the fused pass on the 3B pairs [(img, txt) = 1, (img, txt_neg) = 0, (img_neg, txt) = 0]
//      -> itm_score -> CE. Without ITC, ITM is the official compute_itm: a random half of the
//      pairs keep their image (label 1), the other half take another image of the batch (label 0;
//      the official takes a random image of the dataset).
// total = mlm + itc + itm (each when enabled), as the official training_step sums them.
//
//   auto out = losses::coarse_pretrain_losses(model, batch, queue, gen, ctx);
//   out.total.backward();
// With `on_loss` set, each loss is handed over as soon as it exists (e.g. to run its backward at
// once and free its graph before the next pass: same gradients, a third of the peak activations).
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

#include "fiber/losses/coarse_queue.hpp"
#include "fiber/losses/hard_negatives.hpp"
#include "fiber/losses/itc.hpp"
#include "fiber/models/fiber_coarse.hpp"
#include "fiber/ops/cross_entropy.hpp"
#include "fiber/ops/index.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber::losses {

template <class T>
struct CoarseBatch {
  Tensor<T> images;                   // [B, 3, S, S] preprocessed pixels
  Tensor<std::int64_t> ids;           // [B, L] <s> ... </s> <pad>...
  Tensor<std::int64_t> masks;         // [B, L] 1 for real tokens
  Tensor<std::int64_t> mlm_ids;       // [B, L] ids after mask_for_mlm (needed when MLM is on)
  Tensor<std::int64_t> mlm_labels;    // [B, L] original ids at masked positions, -100 elsewhere
  std::int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

struct CoarseObjectives {
  bool itc = true, itm = true, mlm = true;
  // Run the image blocks that never see text (FiberCoarse::image_prefix) once per batch image and
  // share them between the MLM, ITC and ITM passes (the official code runs them in each pass, 5x
  // per image with ITM's 3B pairs). The same function of the same pixels, so the same losses and
  // gradients up to summation order; refused when training draws drop path (it would draw once,
  // not per pass). Needs one backward of the total (no on_loss).
  bool share_image_prefix = false;
  // Ours, not official (0: the official draw): the share of uniform weight mixed into each ITM
  // negative's draw, (1 - s) softmax(sim) + s uniform (draw_hard_negatives). From scratch the
  // official draw alone left ITM at chance in some of our runs (docs/pretraining.md).
  double uniform_negative_share = 0;
};

// Random choices given instead of drawn (parity tests against the official code, whose draws come
// from torch's generator): [B] candidate indices as draw_hard_negatives returns them.
struct FedNegatives {
  Tensor<std::int64_t> image;  // image negative of text b, drawn from sim_t2i[b]
  Tensor<std::int64_t> text;   // text negative of image b, drawn from sim_i2t[b]
};

template <class T>
struct CoarseLosses {
  Var<T> total, itc, itm, mlm;                // [] each; undefined when that objective is off
  Tensor<std::int64_t> image_negatives;       // [B] (ITC + ITM)
  Tensor<std::int64_t> text_negatives;        // [B]
  double itm_accuracy = 0, mlm_accuracy = 0;  // argmax accuracy of this batch
  std::int64_t mlm_tokens = 0;                // masked tokens in the batch
};

namespace detail {

// ids, masks: [B, L] -> [B, L'] right-padded with pad (mask 0) or cut to L' >= the last real token.
inline Tensor<std::int64_t> resize_text(const Tensor<std::int64_t>& x, std::int64_t length, std::int64_t pad) {
  if (x.size(1) == length) return x;
  Tensor<std::int64_t> out = Tensor<std::int64_t>::full({x.size(0), length}, pad);
  const std::int64_t keep = std::min(length, x.size(1));
  out.narrow(1, 0, keep).copy_(x.narrow(1, 0, keep));
  return out;
}
// The length of the longest text: one past the last position with mask 1.
inline std::int64_t used_length(const Tensor<std::int64_t>& masks) {
  std::int64_t n = 1;
  for (std::int64_t b = 0; b < masks.size(0); ++b)
    for (std::int64_t i = masks.size(1) - 1; i >= n; --i)
      if (masks.at({b, i}) != 0) {
        n = i + 1;
        break;
      }
  return n;
}
template <class T>
double accuracy(const Tensor<T>& logits, const Tensor<std::int64_t>& labels, std::int64_t* counted = nullptr) {
  const Tensor<std::int64_t> pick = argmax(logits, -1);
  std::int64_t right = 0, n = 0;
  for (std::int64_t i = 0; i < labels.numel(); ++i) {
    const std::int64_t want = labels.data()[i];
    if (want == -100) continue;
    ++n;
    right += pick.data()[i] == want;
  }
  if (counted) *counted = n;
  return n ? double(right) / double(n) : 0.0;
}

}  // namespace detail

template <class T, models::FiberCoarseConfig C>
CoarseLosses<T> coarse_pretrain_losses(models::FiberCoarse<T, C>& model, const CoarseBatch<T>& batch, CoarseQueue<T>& queue,
                                       Generator& gen, const nn::ForwardContext<T>& ctx = {},
                                       const CoarseObjectives& which = {}, const FedNegatives* fed = nullptr,
                                       const std::type_identity_t<std::function<void(const std::string&, const Var<T>&)>>& on_loss = {},
                                       bool update_queue = true) {
  const std::int64_t B = batch.size();
  FIBER_CHECK(B >= 1, "coarse pre-training: empty batch");
  FIBER_CHECK(batch.ids.defined() && batch.ids.size(0) == B && batch.masks.shape() == batch.ids.shape(),
              "coarse pre-training: ids ", batch.ids.shape(), " and masks ", batch.masks.shape(), " must be [", B, ", L]");
  FIBER_CHECK(which.itc || which.itm || which.mlm, "coarse pre-training: no objective enabled");
  const std::int64_t pad = C.text.pad_token_id;
  const bool share = which.share_image_prefix;
  FIBER_CHECK(!share || !on_loss, "coarse pre-training: share_image_prefix needs one backward of the total (no on_loss)");
  FIBER_CHECK(!share || !ctx.training || C.swin.drop_path_rate == 0,
              "coarse pre-training: share_image_prefix with drop path ", C.swin.drop_path_rate,
              " would draw it once for three passes; switch one of them off");
  Var<T> shared_prefix;  // [B, N3, D3] image_prefix of the batch, when shared
  auto prefix_of_batch = [&]() -> const Var<T>& {
    if (!shared_prefix.defined()) shared_prefix = model.image_prefix(Var<T>(batch.images), ctx);
    return shared_prefix;
  };
  CoarseLosses<T> out;
  auto add = [&](const char* name, Var<T>& slot, Var<T> loss) {
    slot = loss;
    if (on_loss) {  // the caller takes each loss's graph; the total is a plain value
      on_loss(name, loss);
      out.total = Var<T>(out.total.defined() ? Tensor<T>(out.total.value() + loss.value()) : loss.value().clone());
    } else {
      out.total = out.total.defined() ? Var<T>(out.total + loss) : loss;
    }
  };

  if (which.mlm) {
    FIBER_CHECK(batch.mlm_ids.shape() == batch.ids.shape() && batch.mlm_labels.shape() == batch.ids.shape(),
                "coarse pre-training: MLM needs mlm_ids and mlm_labels of the ids' shape ", batch.ids.shape());
    const models::FusedFeatures<T> f = share ? model.fuse_from_prefix(prefix_of_batch(), batch.mlm_ids, batch.masks, ctx)
                                             : model.fuse(Var<T>(batch.images), batch.mlm_ids, batch.masks, ctx);
    const Var<T> logits = model.mlm_logits(f.text_feats).reshape({-1, C.mlm_vocab});  // [B * L, V]
    const Tensor<std::int64_t> labels = batch.mlm_labels.reshape({-1});
    out.mlm_accuracy = detail::accuracy(logits.value(), labels, &out.mlm_tokens);
    // A batch with no masked token: the official mean over nothing is NaN, which would poison the
    // weights; it contributes 0 here.
    add("mlm", out.mlm, out.mlm_tokens ? cross_entropy(logits, labels) : Var<T>(sum(logits) * T(0)));
  }

  if (which.itc) {
    clamp_temperature(model.temp);
    const Var<T> image_feat =
        share ? model.image_embedding_from_prefix(prefix_of_batch(), ctx) : model.image_embedding(Var<T>(batch.images), ctx);
    const Var<T> text_feat = model.text_embedding(batch.ids, batch.masks, ctx);
    ItcOutput<T> itc = queue.enabled() ? itc_loss(image_feat, text_feat, model.temp, queue.image_feats, queue.text_feats)
                                       : itc_loss(image_feat, text_feat, model.temp);
    add("itc", out.itc, itc.loss);
    const std::int64_t n = B + queue.valid();
    if (which.itm) {
      if (fed) {
        FIBER_CHECK(fed->image.shape() == Shape({B}) && fed->text.shape() == Shape({B}),
                    "coarse pre-training: fed negatives must be [", B, "]");
        out.image_negatives = fed->image;
        out.text_negatives = fed->text;
      } else {
        // The official order: all image negatives (from t2i), then all text negatives (from i2t).
        out.image_negatives = draw_hard_negatives(itc.sim_t2i, n, gen, which.uniform_negative_share);
        out.text_negatives = draw_hard_negatives(itc.sim_i2t, n, gen, which.uniform_negative_share);
      }
    }
    // The queue's rows beyond valid() are never candidates.
    const std::int64_t qv = queue.valid();
    Tensor<T> image_neg;
    Tensor<std::int64_t> text_neg, mask_neg;
    const std::int64_t Lc = std::max(batch.ids.size(1), queue.enabled() ? queue.max_len() : 0);
    if (which.itm) {
      const Tensor<T> q_images = qv ? queue.images.narrow(0, 0, qv) : Tensor<T>{};
      const Tensor<std::int64_t> q_ids = qv ? queue.text_ids.narrow(0, 0, qv) : Tensor<std::int64_t>{};
      const Tensor<std::int64_t> q_masks = qv ? queue.text_masks.narrow(0, 0, qv) : Tensor<std::int64_t>{};
      image_neg = take_candidates(batch.images, q_images, out.image_negatives);
      text_neg = take_candidates(detail::resize_text(batch.ids, Lc, pad), q_ids.defined() ? detail::resize_text(q_ids, Lc, pad) : q_ids,
                                 out.text_negatives);
      mask_neg = take_candidates(detail::resize_text(batch.masks, Lc, 0), q_masks.defined() ? detail::resize_text(q_masks, Lc, 0) : q_masks,
                                 out.text_negatives);
    }
    if (update_queue && queue.enabled())
      queue.enqueue(image_feat.value(), text_feat.value(), batch.images, detail::resize_text(batch.ids, std::min(Lc, queue.max_len()), pad),
                    detail::resize_text(batch.masks, std::min(Lc, queue.max_len()), 0));
    if (which.itm) {
      const Tensor<T> images = concat<T>({batch.images, batch.images, image_neg}, 0);
      const Tensor<std::int64_t> ids_full = detail::resize_text(batch.ids, Lc, pad), masks_full = detail::resize_text(batch.masks, Lc, 0);
      Tensor<std::int64_t> masks = concat<std::int64_t>({masks_full, mask_neg, masks_full}, 0);
      const std::int64_t L = detail::used_length(masks);
      const Tensor<std::int64_t> ids = detail::resize_text(concat<std::int64_t>({ids_full, text_neg, ids_full}, 0), L, pad);
      masks = detail::resize_text(masks, L, 0);
      Tensor<std::int64_t> labels = Tensor<std::int64_t>::zeros({3 * B});
      labels.narrow(0, 0, B).fill_(1);
      Var<T> image_input;  // [3B, ...]: pixels, or their shared prefix
      if (share) {
        // Negatives from the batch reuse its prefix rows; those from the queue run their own.
        std::vector<std::int64_t> rows;
        std::vector<Tensor<T>> queued;
        for (std::int64_t b = 0; b < B; ++b) {
          const std::int64_t j = out.image_negatives.at({b});
          if (j < B) {
            rows.push_back(j);
          } else {
            rows.push_back(B + std::int64_t(queued.size()));
            queued.push_back(image_neg.narrow(0, b, 1));
          }
        }
        const Var<T> candidates = queued.empty() ? prefix_of_batch()
                                                 : concat({prefix_of_batch(), model.image_prefix(Var<T>(concat(queued, 0)), ctx)}, 0);
        const Var<T> neg = index_select(candidates, 0, Tensor<std::int64_t>::from_data({B}, rows));
        image_input = concat({prefix_of_batch(), prefix_of_batch(), neg}, 0);
      }
      const Var<T> logits = model.itm_logits((share ? model.fuse_from_prefix(image_input, ids, masks, ctx)
                                                    : model.fuse(Var<T>(images), ids, masks, ctx))
                                                 .cls_feats);  // [3B, 2]
      out.itm_accuracy = detail::accuracy(logits.value(), labels);
      add("itm", out.itm, cross_entropy(logits, labels));
    }
    return out;
  }

  if (which.itm) {  // compute_itm: random 50/50 without ITC
    const Tensor<double> u = rand<double>({2 * B}, gen);
    // labels: a random permutation of B - B/2 ones... as torch.randperm over [1]*pos + [0]*neg
    std::vector<std::int64_t> order(static_cast<std::size_t>(B));
    for (std::int64_t i = 0; i < B; ++i) order[std::size_t(i)] = i;
    for (std::int64_t i = B - 1; i > 0; --i) std::swap(order[std::size_t(i)], order[std::size_t(std::int64_t(u.at({i}) * double(i + 1)))]);
    Tensor<std::int64_t> labels = Tensor<std::int64_t>::empty({B});
    Tensor<T> images = batch.images.clone();
    const std::int64_t pos = B / 2;
    for (std::int64_t i = 0; i < B; ++i) {
      const bool match = order[std::size_t(i)] < pos || B == 1;
      labels.at({i}) = match ? 1 : 0;
      if (!match) {
        const std::int64_t other = (i + 1 + std::int64_t(u.at({B + i}) * double(B - 1))) % B;
        images.select(0, i).copy_(batch.images.select(0, other));
      }
    }
    const Var<T> logits = model.itm_logits(model.fuse(Var<T>(images), batch.ids, batch.masks, ctx).cls_feats);  // not shared
    out.itm_accuracy = detail::accuracy(logits.value(), labels);
    add("itm", out.itm, cross_entropy(logits, labels));
  }
  return out;
}

}  // namespace fiber::losses
