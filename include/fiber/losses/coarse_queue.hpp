#pragma once
// The ITC queue of coarse FIBER pre-training (official FIBERTransformerSS buffers image_queue,
// text_queue, image_input_queue, text_input_queue, text_input_mask_queue, queue_ptr, queue_total
// and _dequeue_and_enqueue). It keeps the last Q samples' ITC features as extra ITC negatives and
// their raw inputs (pixels, token ids, mask) so that ITM hard negatives can be drawn from them.
//
// Memory: Q * (2H + 3*S*S + 2L) values; the pixels dominate (Q = 4096 at 384 px: 7.2 GB, which is
// why the size is an option here and the official 4096 only a default of the recipe).
#include <algorithm>
#include <cstdint>

#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/ops/reduce.hpp"

namespace fiber::losses {

template <class T>
struct CoarseQueue {
  Tensor<T> image_feats;                // [H, Q] ITC image features, one column per sample
  Tensor<T> text_feats;                 // [H, Q]
  Tensor<T> images;                     // [Q, 3, S, S] preprocessed pixels
  Tensor<std::int64_t> text_ids;        // [Q, L] right-padded with pad_id
  Tensor<std::int64_t> text_masks;      // [Q, L]
  std::int64_t ptr = 0;                 // next column to write
  std::int64_t total = 0;               // samples ever enqueued (the official queue_total)
  std::int64_t pad_id = 1;

  CoarseQueue() = default;
  // As the official __init__: features and pixels N(0, 1), ids and masks 0. The official features
  // are not normalised (each column has norm ~sqrt(H), far above the unit features that replace
  // them); `normalise` makes each column unit-length as ALBEF, where the queue comes from.
  CoarseQueue(std::int64_t size, std::int64_t hidden, std::int64_t image_size, std::int64_t max_len, Generator& gen,
              std::int64_t pad = 1, bool normalise = false)
      : pad_id(pad) {
    FIBER_CHECK(size >= 1 && hidden >= 1 && image_size >= 1 && max_len >= 1,
                "CoarseQueue: size, hidden, image size and text length must be positive, got ", size, ", ", hidden, ", ",
                image_size, ", ", max_len);
    image_feats = randn<T>({hidden, size}, gen);
    text_feats = randn<T>({hidden, size}, gen);
    if (normalise)
      for (const Tensor<T>* q : {&image_feats, &text_feats}) q->assign(*q / sqrt(sum(*q * *q, {0}, true)));
    images = randn<T>({size, 3, image_size, image_size}, gen);
    text_ids = Tensor<std::int64_t>::zeros({size, max_len});
    text_masks = Tensor<std::int64_t>::zeros({size, max_len});
  }

  bool enabled() const { return image_feats.defined(); }
  std::int64_t size() const { return enabled() ? image_feats.size(1) : 0; }
  std::int64_t max_len() const { return text_ids.size(1); }
  // Entries that hold real samples (the official slices [:queue_total], capped at the size).
  std::int64_t valid() const { return std::min(total, size()); }

  // Writes a batch at ptr, wrapping around (the official _dequeue_and_enqueue on one process).
  // image_feat, text_feat: [B, H]; pixels: [B, 3, S, S]; ids, masks: [B, L'] with L' <= L (padded
  // here to L).
  void enqueue(const Tensor<T>& image_feat, const Tensor<T>& text_feat, const Tensor<T>& pixels,
               const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& masks) {
    FIBER_CHECK(enabled(), "CoarseQueue::enqueue: the queue has size 0");
    const std::int64_t B = image_feat.size(0);
    FIBER_CHECK(image_feat.shape() == Shape({B, image_feats.size(0)}) && text_feat.shape() == image_feat.shape(),
                "CoarseQueue::enqueue: features must be [B, ", image_feats.size(0), "], got ", image_feat.shape(), " and ",
                text_feat.shape());
    FIBER_CHECK(pixels.dim() == 4 && pixels.size(0) == B && pixels.shape().back() == images.shape().back() &&
                    pixels.size(1) == 3 && pixels.size(2) == images.size(2),
                "CoarseQueue::enqueue: pixels must be [", B, ", 3, ", images.size(2), ", ", images.size(3), "], got ",
                pixels.shape());
    FIBER_CHECK(ids.dim() == 2 && ids.size(0) == B && ids.shape() == masks.shape() && ids.size(1) <= max_len(),
                "CoarseQueue::enqueue: ids and masks must be [", B, ", <= ", max_len(), "], got ", ids.shape(), " and ",
                masks.shape());
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t q = (ptr + b) % size();  // a batch larger than the queue keeps its last Q
      image_feats.select(1, q).copy_(image_feat.select(0, b));
      text_feats.select(1, q).copy_(text_feat.select(0, b));
      images.select(0, q).copy_(pixels.select(0, b));
      text_ids.select(0, q).fill_(pad_id);
      text_masks.select(0, q).fill_(0);
      text_ids.select(0, q).narrow(0, 0, ids.size(1)).copy_(ids.select(0, b));
      text_masks.select(0, q).narrow(0, 0, ids.size(1)).copy_(masks.select(0, b));
    }
    ptr = (ptr + B) % size();
    total += B;
  }
};

}  // namespace fiber::losses
