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
  for (std::int64_t i = 0; i < Ni; ++i) {
    float best = -INFINITY;
    for (std::int64_t t = 0; t < Nt; ++t)
      if (text_image[std::size_t(t)] == i) best = std::max(best, s.at({i, t}));
    if (best == -INFINITY) continue;  // an image without captions is no query
    std::int64_t above = 0;
    for (std::int64_t t = 0; t < Nt; ++t) above += s.at({i, t}) > best;
    r.text_r1 += above < 1, r.text_r5 += above < 5, r.text_r10 += above < 10;
  }
  std::int64_t queries = 0;
  for (std::int64_t i = 0; i < Ni; ++i)
    queries += std::find(text_image.begin(), text_image.end(), i) != text_image.end();
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

// ITM scores [Ni, Nt]: rank_output of the fused pass on every pair, `batch` pairs at a time.
template <models::FiberCoarseConfig C>
Tensor<float> itm_scores(const models::FiberCoarse<float, C>& model, const Tensor<float>& images,
                         const Tensor<std::int64_t>& ids, const Tensor<std::int64_t>& masks, std::int64_t batch = 128) {
  NoGrad guard;
  const std::int64_t Ni = images.size(0), Nt = ids.size(0), L = ids.size(1);
  Tensor<float> out = Tensor<float>::empty({Ni, Nt});
  const std::int64_t pairs = Ni * Nt;
  for (std::int64_t p0 = 0; p0 < pairs; p0 += batch) {
    const std::int64_t n = std::min(batch, pairs - p0);
    Tensor<float> px = Tensor<float>::empty({n, images.size(1), images.size(2), images.size(3)});
    Tensor<std::int64_t> pid = Tensor<std::int64_t>::empty({n, L}), pm = Tensor<std::int64_t>::empty({n, L});
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int64_t i = (p0 + k) / Nt, t = (p0 + k) % Nt;
      px.select(0, k).copy_(images.select(0, i));
      pid.select(0, k).copy_(ids.select(0, t));
      pm.select(0, k).copy_(masks.select(0, t));
    }
    const Tensor<float> s = model.rank_score(model.fuse(Var<float>(px), pid, pm).cls_feats).value();  // [n, 1]
    for (std::int64_t k = 0; k < n; ++k) out.at({(p0 + k) / Nt, (p0 + k) % Nt}) = s.at({k, 0});
  }
  return out;
}

}  // namespace fiber::train
