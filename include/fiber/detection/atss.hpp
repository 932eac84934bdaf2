#pragma once
// ATSS: which anchor learns which ground-truth box (Adaptive Training Sample Selection), as the
// official fine-grained loss prepares its targets (modeling/rpn/loss.py,
// ATSSLossComputation.prepare_targets), for one image:
//   1. per level, the topk · (anchors per location) anchors whose centres are nearest the box's
//      centre are its candidates;
//   2. a candidate is positive when its IoU (+1 convention) is at least mean + std (unbiased) of
//      the IoUs of all the box's candidates, and its centre lies inside the box by more than 0.01
//      on every side;
//   3. an anchor positive for several boxes takes the one with the highest IoU (the first on ties).
// atss_targets adds what the losses read: box regression targets (BoxCoder::encode of the matched
// box; of box 0 where unmatched, as the official argmax does), the token targets (the matched
// box's row of the positive map; unmatched anchors get a 1 in the last token column only, the
// official "no object" token) and centerness_targets for the positives.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "fiber/detection/boxes.hpp"

namespace fiber::detection {

struct AtssOptions {
  std::int64_t topk = 9;                  // MODEL.ATSS.TOPK
  std::int64_t anchors_per_location = 1;  // len(ASPECT_RATIOS) · SCALES_PER_OCTAVE
};

// For each anchor the index of its box, or −1. anchors: [A, 4] (levels one after another, sizes in
// anchors_per_level), gt: [G, 4].
template <class T>
std::vector<std::int64_t> atss_assign(const Tensor<T>& anchors, std::span<const std::int64_t> anchors_per_level,
                                      const Tensor<T>& gt, const AtssOptions& opt = {}) {
  detail::check_boxes(anchors, "atss_assign: anchors");
  detail::check_boxes(gt, "atss_assign: gt boxes");
  FIBER_CHECK(opt.topk >= 1 && opt.anchors_per_location >= 1, "atss_assign: topk ", opt.topk,
              " and anchors per location ", opt.anchors_per_location, " must be >= 1");
  const std::int64_t A = anchors.size(0), G = gt.size(0);
  std::int64_t counted = 0;
  for (std::int64_t n : anchors_per_level) {
    FIBER_CHECK(n >= 0, "atss_assign: a level of ", n, " anchors");
    counted += n;
  }
  FIBER_CHECK(counted == A, "atss_assign: the levels hold ", counted, " anchors, the anchor tensor ", A);
  std::vector<std::int64_t> matched(static_cast<std::size_t>(A), -1);
  if (G == 0 || A == 0) return matched;

  const Tensor<T> iou = box_iou(anchors, gt);  // [A, G]
  const Tensor<T> ac = anchors.contiguous(), gc = gt.contiguous();
  const T* a = ac.data();
  const T* b = gc.data();
  const T* pi = iou.data();
  std::vector<T> acx(static_cast<std::size_t>(A)), acy(static_cast<std::size_t>(A));
  for (std::int64_t i = 0; i < A; ++i) {
    acx[std::size_t(i)] = (a[4 * i + 2] + a[4 * i]) / T(2);
    acy[std::size_t(i)] = (a[4 * i + 3] + a[4 * i + 1]) / T(2);
  }
  std::vector<T> best(static_cast<std::size_t>(A), -std::numeric_limits<T>::infinity());
  std::vector<std::int64_t> candidates, order;
  std::vector<T> dist;
  for (std::int64_t g = 0; g < G; ++g) {
    const T* box = b + 4 * g;
    const T gcx = (box[2] + box[0]) / T(2), gcy = (box[3] + box[1]) / T(2);
    // 1. The nearest anchors of each level (ties: the lower index).
    candidates.clear();
    std::int64_t start = 0;
    for (std::int64_t n : anchors_per_level) {
      const std::int64_t k = std::min(opt.topk * opt.anchors_per_location, n);
      dist.resize(std::size_t(n));
      order.resize(std::size_t(n));
      for (std::int64_t i = 0; i < n; ++i) {
        const T dx = acx[std::size_t(start + i)] - gcx, dy = acy[std::size_t(start + i)] - gcy;
        dist[std::size_t(i)] = std::sqrt(dx * dx + dy * dy);
      }
      std::iota(order.begin(), order.end(), std::int64_t{0});
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::int64_t x, std::int64_t y) {
        return dist[std::size_t(x)] < dist[std::size_t(y)] || (dist[std::size_t(x)] == dist[std::size_t(y)] && x < y);
      });
      for (std::int64_t j = 0; j < k; ++j) candidates.push_back(start + order[std::size_t(j)]);
      start += n;
    }
    // 2. The IoU threshold: mean + unbiased std over the candidates (NaN for a single candidate,
    //    as torch.std: then nothing is positive).
    const auto C = std::int64_t(candidates.size());
    double mean = 0;
    for (std::int64_t i : candidates) mean += double(pi[i * G + g]);
    mean /= double(C);
    double var = 0;
    for (std::int64_t i : candidates) var += (double(pi[i * G + g]) - mean) * (double(pi[i * G + g]) - mean);
    const T threshold = T(mean + std::sqrt(var / double(C - 1)));
    for (std::int64_t i : candidates) {
      const T v = pi[i * G + g];
      if (!(v >= threshold)) continue;
      const T cx = acx[std::size_t(i)], cy = acy[std::size_t(i)];
      const T inside = std::min(std::min(cx - box[0], cy - box[1]), std::min(box[2] - cx, box[3] - cy));
      if (!(inside > T(0.01))) continue;
      // 3. Boxes in order, the strictly higher IoU wins.
      if (v > best[std::size_t(i)]) {
        best[std::size_t(i)] = v;
        matched[std::size_t(i)] = g;
      }
    }
  }
  return matched;
}

template <class T>
struct AtssTargets {
  std::vector<std::int64_t> matched;  // [A]: the anchor's box, −1 where unmatched
  Tensor<T> box_targets;              // [A, 4]: BoxCoder::encode(matched box (box 0 if none), anchor)
  Tensor<T> token_targets;            // [A, L]: the matched box's positive-map row; unmatched: last column 1
  std::int64_t positives() const {
    return std::int64_t(std::count_if(matched.begin(), matched.end(), [](std::int64_t m) { return m >= 0; }));
  }
};

// gt: [G, 4]; positive_map: [G, L] (1 where a box's phrase covers token l; L = 256 in FIBER).
template <class T>
AtssTargets<T> atss_targets(const Tensor<T>& anchors, std::span<const std::int64_t> anchors_per_level, const Tensor<T>& gt,
                            const Tensor<T>& positive_map, const BoxCoder& coder = {}, const AtssOptions& opt = {}) {
  FIBER_CHECK(positive_map.dim() == 2 && positive_map.size(0) == gt.size(0) && positive_map.size(1) >= 1,
              "atss_targets: positive map must be [G, L] with one row per box (G = ", gt.size(0), "), got ",
              positive_map.shape());
  AtssTargets<T> t;
  t.matched = atss_assign(anchors, anchors_per_level, gt, opt);
  const std::int64_t A = anchors.size(0), G = gt.size(0), L = positive_map.size(1);
  t.token_targets = Tensor<T>::zeros({A, L});
  const Tensor<T> pm = positive_map.contiguous();
  for (std::int64_t i = 0; i < A; ++i) {
    T* row = t.token_targets.data() + i * L;
    const std::int64_t m = t.matched[std::size_t(i)];
    if (m >= 0) std::copy_n(pm.data() + m * L, L, row);
    else row[L - 1] = T(1);
  }
  if (G == 0) {
    t.box_targets = Tensor<T>::zeros({A, 4});
    return t;
  }
  Tensor<T> matched_boxes = Tensor<T>::empty({A, 4});
  const Tensor<T> gc = gt.contiguous();
  for (std::int64_t i = 0; i < A; ++i)
    std::copy_n(gc.data() + 4 * std::max<std::int64_t>(t.matched[std::size_t(i)], 0), 4, matched_boxes.data() + 4 * i);
  t.box_targets = coder.encode(matched_boxes, anchors);
  return t;
}

// The centerness target of positive anchors (compute_centerness_targets): the box decoded from its
// regression target, then sqrt(min(l, r) / max(l, r) · min(t, b) / max(t, b)) of the anchor
// centre's distances to its sides. box_targets, anchors: [P, 4] -> [P].
template <class T>
Tensor<T> centerness_targets(const Tensor<T>& box_targets, const Tensor<T>& anchors, const BoxCoder& coder = {}) {
  const Tensor<T> boxes = coder.decode(box_targets, anchors);
  const Tensor<T> ac = anchors.contiguous();
  const std::int64_t P = boxes.size(0);
  Tensor<T> out = Tensor<T>::empty({P});
  for (std::int64_t i = 0; i < P; ++i) {
    const T* a = ac.data() + 4 * i;
    const T* g = boxes.data() + 4 * i;
    const T cx = (a[2] + a[0]) / T(2), cy = (a[3] + a[1]) / T(2);
    const T l = cx - g[0], t = cy - g[1], r = g[2] - cx, b = g[3] - cy;
    out.data()[i] = std::sqrt((std::min(l, r) / std::max(l, r)) * (std::min(t, b) / std::max(t, b)));
  }
  return out;
}

}  // namespace fiber::detection
