#pragma once
// Retrieval recall as the official coarse evaluation computes it (objectives.compute_itc_recall,
// compute_itm_recall): a score for every (image, text) pair, then
//   text retrieval  (TR@k): an image query is a hit when one of its captions is among its k
//                           best-scoring texts;
//   image retrieval (IR@k): a text query is a hit when its image is among its k best images.
// ITC scores are dot products of the unimodal embeddings; ITM scores run the fused model on every
// pair and take rank_output(cls_feats) (the official ITM recall has no ITC shortlist).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fiber/autograd/grad_mode.hpp"
#include "fiber/core/error.hpp"
#include "fiber/models/fiber_coarse.hpp"
#include "fiber/ops/index.hpp"
#include "fiber/ops/linalg.hpp"

namespace fiber::train {

struct RetrievalRecall {
  double image_r1 = 0, image_r5 = 0, image_r10 = 0;  // image retrieval (text queries)
  double text_r1 = 0, text_r5 = 0, text_r10 = 0;     // text retrieval (image queries)
};

// scores: [Ni, Nt]; text_image[t]: the image of text t (in [0, Ni)).
inline RetrievalRecall retrieval_recall(const Tensor<float>& scores, const std::vector<std::int64_t>& text_image) {
  FIBER_CHECK(scores.dim() == 2 && scores.size(1) == std::int64_t(text_image.size()) && scores.size(0) >= 1,
              "retrieval_recall: scores ", scores.shape(), " for ", text_image.size(), " texts");
  const std::int64_t Ni = scores.size(0), Nt = scores.size(1);
  for (std::int64_t img : text_image)
    FIBER_CHECK(img >= 0 && img < Ni, "retrieval_recall: a text's image ", img, " is outside [0, ", Ni, ")");
  const Tensor<float> s = scores.contiguous();
  RetrievalRecall r;
  // Rank of the best hit: how many candidates score strictly higher.
  for (std::int64_t t = 0; t < Nt; ++t) {
    const float want = s.at({text_image[std::size_t(t)], t});
    std::int64_t above = 0;
    for (std::int64_t i = 0; i < Ni; ++i) above += s.at({i, t}) > want;
    r.image_r1 += above < 1, r.image_r5 += above < 5, r.image_r10 += above < 10;
  }
  std::int64_t queries = 0;  // images with at least one caption
  for (std::int64_t i = 0; i < Ni; ++i) {
    bool captioned = false;
    float best = -INFINITY;
    for (std::int64_t t = 0; t < Nt; ++t)
      if (text_image[std::size_t(t)] == i) captioned = true, best = std::max(best, s.at({i, t}));
    if (!captioned) continue;  // an image without captions is no query
    ++queries;
    std::int64_t above = 0;
    for (std::int64_t t = 0; t < Nt; ++t) above += s.at({i, t}) > best;
    r.text_r1 += above < 1, r.text_r5 += above < 5, r.text_r10 += above < 10;
  }
  r.image_r1 /= double(Nt), r.image_r5 /= double(Nt), r.image_r10 /= double(Nt);
  const double q = double(std::max<std::int64_t>(queries, 1));
  r.text_r1 /= q, r.text_r5 /= q, r.text_r10 /= q;
  return r;
}

// ITC scores [Ni, Nt] of preprocessed images [Ni, 3, S, S] and texts (ids, masks [Nt, L]), in
// batches of `batch`.
template <models::FiberCoarseConfig C>
Tensor<float> itc_scores(const models::FiberCoarse<float, C>& model, const Tensor<float>& images,
                         const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& masks, std::int64_t batch = 64) {
  NoGrad guard;
  std::vector<Tensor<float>> ie, te;
  for (std::int64_t i = 0; i < images.size(0); i += batch)
    ie.push_back(model.image_embedding(Var<float>(images.narrow(0, i, std::min(batch, images.size(0) - i)))).value());
  for (std::int64_t t = 0; t < ids.size(0); t += batch) {
    const std::int64_t n = std::min(batch, ids.size(0) - t);
    te.push_back(model.text_embedding(ids.narrow(0, t, n), masks.narrow(0, t, n)).value());
  }
  return matmul(concat(ie, 0), concat(te, 0).t());
}

// ITM scores [Ni, Nt]: rank_output of the fused pass on every pair. Each image's blocks before
// fusion (FiberCoarse::image_prefix) run once, not once per caption; its prefix then meets the
// captions `batch` at a time.
template <models::FiberCoarseConfig C>
Tensor<float> itm_scores(const models::FiberCoarse<float, C>& model, const Tensor<float>& images,
                         const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& masks, std::int64_t batch = 128) {
  NoGrad guard;
  const std::int64_t Ni = images.size(0), Nt = ids.size(0);
  Tensor<float> out = Tensor<float>::empty({Ni, Nt});
  for (std::int64_t i = 0; i < Ni; ++i) {
    const Var<float> prefix = model.image_prefix(Var<float>(images.narrow(0, i, 1)));  // [1, N3, D3]
    for (std::int64_t t0 = 0; t0 < Nt; t0 += batch) {
      const std::int64_t n = std::min(batch, Nt - t0);
      const Var<float> repeated = index_select(prefix, 0, Tensor<std::int64_t>::zeros({n}));  // [n, N3, D3]
      const Tensor<float> s =
          model.rank_score(model.fuse_from_prefix(repeated, ids.narrow(0, t0, n), masks.narrow(0, t0, n)).cls_feats).value();
      out.select(0, i).narrow(0, t0, n).copy_(s.reshape({n}));  // s: [n, 1]
    }
  }
  return out;
}

}  // namespace fiber::train
