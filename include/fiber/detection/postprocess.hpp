#pragma once
// From the grounding head's outputs to detections, as the official fine-grained inference does it
// (modeling/rpn/inference.py, ATSSPostProcessor with SCORE_AGG MEAN, and the CUDA ml_nms it calls):
//   1. per level: a phrase's score at a location is the mean of the sigmoid of its tokens' logits;
//      the (location, phrase) pairs scoring above `score_threshold` are candidates, of which the
//      `pre_nms_top_n` highest by score · sigmoid(centerness) are kept; a kept pair's detection
//      score is sqrt(score · sigmoid(centerness)) and its box the decoded regression, clipped to
//      [0, w − 1] × [0, h − 1] of the image (not the padded one) and kept when both sides (+1) are
//      at least `min_size`;
//   2. over all levels: non-maximum suppression within each phrase (IoU with the +1 convention
//      above `nms_threshold`), then the `detections_per_image` best, where a tie at the last place
//      keeps every tied box (the official kthvalue threshold with >=).
// Detections come back best first; labels are 1-based phrase indices (phrase p is label p + 1).
// The official code returns them in candidate order; the set is the same.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "fiber/detection/boxes.hpp"

namespace fiber::detection {

// One feature level of one image. H·W locations, one anchor each, in row-major order.
template <class T>
struct LevelPredictions {
  Tensor<T> box_regression;  // [4, H, W] box codes (BoxCoder)
  Tensor<T> centerness;      // [1, H, W] logits
  Tensor<T> token_logits;    // [H·W, T] grounding logits of each location against each text token
  Tensor<T> anchors;         // [H·W, 4]
};

// The official inference settings (MODEL.ATSS.*, TEST.*): INFERENCE_TH 0.05, PRE_NMS_TOP_N 1000,
// NMS_TH 0.6, DETECTIONS_PER_IMG 100, min_size 0.
struct PostprocessOptions {
  double score_threshold = 0.05;
  std::int64_t pre_nms_top_n = 1000;
  double nms_threshold = 0.6;
  std::int64_t detections_per_image = 100;  // <= 0: keep all
  double min_size = 0;
};

template <class T>
struct Detections {
  Tensor<T> boxes;                   // [K, 4] x1, y1, x2, y2 in the image's pixels
  Tensor<T> scores;                  // [K], descending
  std::vector<std::int64_t> labels;  // K 1-based phrase indices
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

// Which text tokens make up each phrase: phrase_tokens[p] lists the token columns of phrase p.
using PhraseTokens = std::vector<std::vector<std::int64_t>>;

namespace detail {
template <class T>
T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

inline void check_phrase_tokens(const PhraseTokens& phrases, std::int64_t tokens) {
  for (std::size_t p = 0; p < phrases.size(); ++p) {
    FIBER_CHECK(!phrases[p].empty(), "postprocess: phrase ", p, " has no tokens (its score would be undefined)");
    for (std::int64_t t : phrases[p])
      FIBER_CHECK(t >= 0 && t < tokens, "postprocess: phrase ", p, " names token ", t, " of ", tokens);
  }
}

// Intersection over union of two [x1, y1, x2, y2] boxes, widths +1, in the order of operations of
// the CUDA ml_nms kernel.
template <class T>
T nms_iou(const T* a, const T* b) {
  const T w = std::max(std::min(a[2], b[2]) - std::max(a[0], b[0]) + T(1), T(0));
  const T h = std::max(std::min(a[3], b[3]) - std::max(a[1], b[1]) + T(1), T(0));
  const T inter = w * h;
  const T sa = (a[2] - a[0] + T(1)) * (a[3] - a[1] + T(1));
  const T sb = (b[2] - b[0] + T(1)) * (b[3] - b[1] + T(1));
  return inter / (sa + sb - inter);
}

// Keeps the first `cap` of `keep` (indices into `scores`, best first) and every later one tied
// with the last kept (the official kthvalue threshold with >=). cap <= 0: all.
template <class T>
void cap_with_ties(std::vector<std::int64_t>& keep, const std::vector<T>& scores, std::int64_t cap) {
  if (cap <= 0 || std::int64_t(keep.size()) <= cap) return;
  const T last = scores[std::size_t(keep[std::size_t(cap - 1)])];
  std::size_t cut = std::size_t(cap);
  while (cut < keep.size() && scores[std::size_t(keep[cut])] >= last) ++cut;
  keep.resize(cut);
}

template <class T>
Detections<T> gather_detections(std::span<const std::int64_t> keep, const std::vector<T>& boxes,
                                const std::vector<T>& scores, const std::vector<std::int64_t>& labels) {
  Detections<T> out;
  const std::int64_t K = std::int64_t(keep.size());
  out.boxes = Tensor<T>::empty({K, 4});
  out.scores = Tensor<T>::empty({K});
  for (std::int64_t k = 0; k < K; ++k) {
    const std::size_t i = std::size_t(keep[std::size_t(k)]);
    std::copy_n(boxes.data() + 4 * i, 4, out.boxes.data() + 4 * k);
    out.scores.data()[k] = scores[i];
    out.labels.push_back(labels[i]);
  }
  return out;
}

// Clamp that lets NaN through, as torch.clamp does (the box is then dropped by the size check).
template <class T>
T clamp_keep_nan(T v, T hi) { return v < T(0) ? T(0) : (v > hi ? hi : v); }
}  // namespace detail

// Indices of the boxes that survive same-label greedy NMS, best score first (ties: lower index
// first). boxes: [K, 4], scores: [K], labels: K values. A box suppresses the later boxes of its
// label whose IoU with it is above `threshold`.
template <class T>
std::vector<std::int64_t> ml_nms(const Tensor<T>& boxes, const Tensor<T>& scores, std::span<const std::int64_t> labels,
                                 double threshold) {
  detail::check_boxes(boxes, "ml_nms: boxes");
  const std::int64_t K = boxes.size(0);
  FIBER_CHECK(scores.dim() == 1 && scores.size(0) == K && static_cast<std::int64_t>(labels.size()) == K, "ml_nms: ", K,
              " boxes need as many scores and labels, got scores ", scores.shape(), " and ", labels.size(), " labels");
  const Tensor<T> bc = boxes.contiguous(), sc = scores.contiguous();
  const T* b = bc.data();
  const T* s = sc.data();
  std::vector<std::int64_t> order(static_cast<std::size_t>(K));
  std::iota(order.begin(), order.end(), std::int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t i, std::int64_t j) { return s[i] > s[j]; });
  // Only boxes of one label meet, so each label's boxes (in score order) are suppressed on their own.
  std::vector<std::int64_t> by_label = order;
  std::stable_sort(by_label.begin(), by_label.end(),
                   [&](std::int64_t i, std::int64_t j) { return labels[std::size_t(i)] < labels[std::size_t(j)]; });
  std::vector<char> removed(static_cast<std::size_t>(K), 0);
  const T thr = T(threshold);
  for (std::size_t begin = 0; begin < by_label.size();) {
    std::size_t end = begin;
    while (end < by_label.size() && labels[std::size_t(by_label[end])] == labels[std::size_t(by_label[begin])]) ++end;
    for (std::size_t i = begin; i < end; ++i) {
      const std::int64_t bi = by_label[i];
      if (removed[std::size_t(bi)]) continue;
      for (std::size_t j = i + 1; j < end; ++j) {
        const std::int64_t bj = by_label[j];
        if (!removed[std::size_t(bj)] && detail::nms_iou(b + 4 * bi, b + 4 * bj) > thr) removed[std::size_t(bj)] = 1;
      }
    }
    begin = end;
  }
  std::vector<std::int64_t> keep;
  for (std::int64_t i : order)
    if (!removed[std::size_t(i)]) keep.push_back(i);
  return keep;
}

// Phrase scores of every location: out[l, p] = mean over phrase p's tokens of sigmoid(logits[l, t]).
// token_logits: [L, T] -> [L, P].
template <class T>
Tensor<T> phrase_scores(const Tensor<T>& token_logits, const PhraseTokens& phrases) {
  FIBER_CHECK(token_logits.dim() == 2, "phrase_scores: token logits must be [locations, tokens], got ",
              token_logits.shape());
  detail::check_phrase_tokens(phrases, token_logits.size(1));
  const std::int64_t L = token_logits.size(0), Tt = token_logits.size(1), P = std::int64_t(phrases.size());
  const Tensor<T> lc = token_logits.contiguous();
  Tensor<T> out = Tensor<T>::empty({L, P});
  for (std::int64_t l = 0; l < L; ++l) {
    const T* row = lc.data() + l * Tt;
    for (std::int64_t p = 0; p < P; ++p) {
      T sum = T(0);
      for (std::int64_t t : phrases[std::size_t(p)]) sum += detail::sigmoid(row[t]);
      out.data()[l * P + p] = sum / T(phrases[std::size_t(p)].size());
    }
  }
  return out;
}

// Detections of one image of size image_w × image_h (after resizing, before padding) from its levels.
template <class T>
Detections<T> postprocess(std::span<const LevelPredictions<T>> levels, const PhraseTokens& phrases,
                          std::int64_t image_w, std::int64_t image_h, const PostprocessOptions& opt = {},
                          const BoxCoder& coder = {}) {
  FIBER_CHECK(image_w > 0 && image_h > 0, "postprocess: image size ", image_w, "x", image_h, " must be positive");
  FIBER_CHECK(opt.pre_nms_top_n >= 0, "postprocess: pre_nms_top_n ", opt.pre_nms_top_n, " must be >= 0");
  const T max_x = T(image_w - 1), max_y = T(image_h - 1);
  std::vector<T> boxes, scores;
  std::vector<std::int64_t> labels;
  for (std::size_t lv = 0; lv < levels.size(); ++lv) {
    const LevelPredictions<T>& level = levels[lv];
    const Tensor<T>& reg = level.box_regression;
    FIBER_CHECK(reg.dim() == 3 && reg.size(0) == 4, "postprocess: level ", lv, " box regression must be [4, H, W], got ",
                reg.shape());
    const std::int64_t L = reg.size(1) * reg.size(2);
    FIBER_CHECK(level.centerness.shape() == Shape({1, reg.size(1), reg.size(2)}), "postprocess: level ", lv,
                " centerness must be [1, ", reg.size(1), ", ", reg.size(2), "], got ", level.centerness.shape());
    FIBER_CHECK(level.token_logits.dim() == 2 && level.token_logits.size(0) == L, "postprocess: level ", lv,
                " token logits must be [", L, ", tokens], got ", level.token_logits.shape());
    FIBER_CHECK(level.anchors.shape() == Shape({L, 4}), "postprocess: level ", lv, " anchors must be [", L,
                ", 4], got ", level.anchors.shape());
    const Tensor<T> ps = phrase_scores(level.token_logits, phrases);  // [L, P]
    const std::int64_t P = ps.size(1);
    const Tensor<T> ctr = level.centerness.contiguous();
    // Candidates: (location · P + phrase, score · sigmoid(centerness)).
    std::vector<std::int64_t> cand;
    std::vector<T> ranked;
    for (std::int64_t l = 0; l < L; ++l) {
      const T c = detail::sigmoid(ctr.data()[l]);
      for (std::int64_t p = 0; p < P; ++p) {
        const T s = ps.data()[l * P + p];
        if (s > T(opt.score_threshold)) {
          cand.push_back(l * P + p);
          ranked.push_back(s * c);
        }
      }
    }
    std::vector<std::size_t> order(cand.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    const std::size_t top = std::min(order.size(), static_cast<std::size_t>(opt.pre_nms_top_n));
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(top), order.end(), [&](std::size_t i, std::size_t j) {
      return ranked[i] > ranked[j] || (ranked[i] == ranked[j] && i < j);
    });
    order.resize(top);
    if (order.empty()) continue;
    // Decode the kept candidates' locations.
    const Tensor<T> rc = reg.contiguous(), ac = level.anchors.contiguous();
    const std::int64_t K = std::int64_t(order.size());
    Tensor<T> codes = Tensor<T>::empty({K, 4}), anchors = Tensor<T>::empty({K, 4});
    for (std::int64_t k = 0; k < K; ++k) {
      const std::int64_t l = cand[order[std::size_t(k)]] / P;
      for (std::int64_t c = 0; c < 4; ++c) {
        codes.data()[4 * k + c] = rc.data()[c * L + l];
        anchors.data()[4 * k + c] = ac.data()[4 * l + c];
      }
    }
    const Tensor<T> decoded = coder.decode(codes, anchors);
    for (std::int64_t k = 0; k < K; ++k) {
      const T* d = decoded.data() + 4 * k;
      const T x1 = detail::clamp_keep_nan(d[0], max_x), y1 = detail::clamp_keep_nan(d[1], max_y);
      const T x2 = detail::clamp_keep_nan(d[2], max_x), y2 = detail::clamp_keep_nan(d[3], max_y);
      if (!(x2 - x1 + T(1) >= T(opt.min_size) && y2 - y1 + T(1) >= T(opt.min_size))) continue;
      boxes.insert(boxes.end(), {x1, y1, x2, y2});
      scores.push_back(std::sqrt(ranked[order[std::size_t(k)]]));
      labels.push_back(cand[order[std::size_t(k)]] % P + 1);
    }
  }

  const std::int64_t n = std::int64_t(labels.size());
  const Tensor<T> all_boxes = Tensor<T>::from_data({n, 4}, boxes);
  const Tensor<T> all_scores = Tensor<T>::from_data({n}, scores);
  std::vector<std::int64_t> keep =
      opt.nms_threshold > 0 ? ml_nms(all_boxes, all_scores, labels, opt.nms_threshold) : [&] {
        std::vector<std::int64_t> all(static_cast<std::size_t>(n));
        std::iota(all.begin(), all.end(), std::int64_t(0));
        std::stable_sort(all.begin(), all.end(), [&](std::int64_t i, std::int64_t j) { return scores[i] > scores[j]; });
        return all;
      }();
  detail::cap_with_ties(keep, scores, opt.detections_per_image);
  return detail::gather_detections(keep, boxes, scores, labels);
}

// The detections of several prompts over one image (a category list split into chunks) as one
// list: part i's labels shifted by label_offsets[i], best first, the best detections_per_image
// (<= 0: all) with ties at the last place kept, as within one prompt.
template <class T>
Detections<T> merge_detections(std::span<const Detections<T>> parts, std::span<const std::int64_t> label_offsets,
                               std::int64_t detections_per_image) {
  FIBER_CHECK(parts.size() == label_offsets.size(), "merge_detections: ", parts.size(), " parts but ",
              label_offsets.size(), " label offsets");
  std::vector<T> boxes, scores;
  std::vector<std::int64_t> labels;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Detections<T>& d = parts[i];
    FIBER_CHECK(d.boxes.shape() == Shape({d.size(), 4}) && d.scores.shape() == Shape({d.size()}),
                "merge_detections: part ", i, " has ", d.size(), " labels, boxes ", d.boxes.shape(), " and scores ",
                d.scores.shape());
    const Tensor<T> b = d.boxes.contiguous(), s = d.scores.contiguous();
    boxes.insert(boxes.end(), b.data(), b.data() + 4 * d.size());
    scores.insert(scores.end(), s.data(), s.data() + d.size());
    for (std::int64_t l : d.labels) labels.push_back(l + label_offsets[i]);
  }
  std::vector<std::int64_t> keep(labels.size());
  std::iota(keep.begin(), keep.end(), std::int64_t(0));
  std::stable_sort(keep.begin(), keep.end(), [&](std::int64_t a, std::int64_t b) {
    return scores[std::size_t(a)] > scores[std::size_t(b)];
  });
  detail::cap_with_ties(keep, scores, detections_per_image);
  return detail::gather_detections(keep, boxes, scores, labels);
}

}  // namespace fiber::detection
