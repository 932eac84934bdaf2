#pragma once
// MLM masking as HF DataCollatorForLanguageModeling (mlm_probability 0.15, no whole-word
// masking), which the official coarse data pipeline applies (FIBER_SPEC §2):
//   each token that is not special (<s>, </s>, <pad>, <unk>, <mask>) is chosen with p = 0.15;
//   a chosen token becomes <mask> with p = 0.8, else a random id in [0, vocab) with p = 0.5,
//   else stays; labels are the original ids at chosen positions and -100 elsewhere.
// Draws come from a Generator: four uniform arrays of [B, L] (choose, mask, random, which id), so
// the result depends only on (seed, offset), never on the thread count.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/core/tensor.hpp"

namespace fiber::losses {

struct MlmMaskingOptions {
  double probability = 0.15;
  std::int64_t mask_id = 50264;           // <mask> (roberta-base)
  std::int64_t vocab_size = 50265;        // random replacements are drawn from [0, vocab_size)
  std::vector<std::int64_t> special_ids{0, 1, 2, 3, 50264};  // never chosen: <s> <pad> </s> <unk> <mask>
};

struct MlmBatch {
  Tensor<std::int64_t> ids;     // [B, L] with the chosen tokens replaced
  Tensor<std::int64_t> labels;  // [B, L] original id at chosen positions, -100 elsewhere
};

inline MlmBatch mask_for_mlm(const Tensor<std::int64_t>& ids, Generator& gen, const MlmMaskingOptions& o) {
  FIBER_CHECK(ids.dim() == 2, "mask_for_mlm: ids must be [B, L], got ", ids.shape());
  FIBER_CHECK(o.probability >= 0 && o.probability <= 1, "mask_for_mlm: probability ", o.probability, " outside [0, 1]");
  FIBER_CHECK(o.vocab_size >= 1 && o.mask_id >= 0 && o.mask_id < o.vocab_size, "mask_for_mlm: <mask> id ", o.mask_id,
              " outside the vocabulary of ", o.vocab_size);
  const Shape shape = ids.shape();
  const Tensor<double> choose = rand<double>(shape, gen), as_mask = rand<double>(shape, gen),
                       as_random = rand<double>(shape, gen), which = rand<double>(shape, gen);
  MlmBatch out{ids.clone(), Tensor<std::int64_t>::full(shape, -100)};
  for (std::int64_t b = 0; b < shape[0]; ++b)
    for (std::int64_t i = 0; i < shape[1]; ++i) {
      const std::int64_t id = ids.at({b, i});
      const bool special = std::find(o.special_ids.begin(), o.special_ids.end(), id) != o.special_ids.end();
      if (special || choose.at({b, i}) >= o.probability) continue;
      out.labels.at({b, i}) = id;
      if (as_mask.at({b, i}) < 0.8)
        out.ids.at({b, i}) = o.mask_id;
      else if (as_random.at({b, i}) < 0.5)
        out.ids.at({b, i}) = std::min<std::int64_t>(o.vocab_size - 1, std::int64_t(which.at({b, i}) * double(o.vocab_size)));
    }
  return out;
}

}  // namespace fiber::losses
