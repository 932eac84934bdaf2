#pragma once
// From the DyHead's per-level outputs to what detection/ consumes:
//   flatten_head_outputs(h)        -> [N, A, L] logits, [N, A, 4] box codes, [N, A] centerness,
//                                     anchors in the official order (levels one after another,
//                                     each row-major), for grounding_losses
//   image_predictions(h, n, anchors) -> image n's LevelPredictions, for postprocess
//   level_anchors(h)               -> FIBER's anchors of each level of h (strides 8 … 128)
#include <array>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "fiber/detection/anchors.hpp"
#include "fiber/detection/postprocess.hpp"
#include "fiber/models/dyhead.hpp"
#include "fiber/ops/join.hpp"

namespace fiber::models {

template <class T>
struct FlatHeadOutputs {
  Var<T> logits;          // [N, A, L]
  Var<T> box_regression;  // [N, A, 4]
  Var<T> centerness;      // [N, A]
};

// The official permute_and_flatten of each level, concatenated over levels (differentiable).
template <class T>
FlatHeadOutputs<T> flatten_head_outputs(const HeadOutputs<T>& h) {
  std::vector<Var<T>> logits, boxes, centerness;
  for (std::size_t l = 0; l < h.box_regression.size(); ++l) {
    const Var<T>& b = h.box_regression[l];  // [N, 4, H, W]
    const std::int64_t N = b.size(0), HW = b.size(2) * b.size(3);
    boxes.push_back(b.reshape({N, 4, HW}).transpose(1, 2));
    centerness.push_back(h.centerness[l].reshape({N, HW}));
    logits.push_back(h.token_logits[l]);
  }
  return {concat(logits, 1), concat(boxes, 1), concat(centerness, 1)};
}

// FIBER's anchors (one per location, sizes 64 … 1024 at strides 8 … 128) for each level of h.
template <class T>
std::vector<Tensor<T>> level_anchors(const HeadOutputs<T>& h) {
  FIBER_CHECK(h.box_regression.size() == detection::fiber_anchor_levels.size(), "level_anchors: ",
              h.box_regression.size(), " levels, FIBER has ", detection::fiber_anchor_levels.size());
  std::vector<Tensor<T>> out;
  const double ratio = 1.0;
  for (std::size_t l = 0; l < h.box_regression.size(); ++l) {
    const auto [stride, size] = detection::fiber_anchor_levels[l];
    out.push_back(detection::grid_anchors<T>(h.box_regression[l].size(2), h.box_regression[l].size(3), stride,
                                             detection::cell_anchors(stride, {&size, 1}, {&ratio, 1})));
  }
  return out;
}

// Image n's per-level predictions for detection::postprocess (values, no graph).
template <class T>
std::vector<detection::LevelPredictions<T>> image_predictions(const HeadOutputs<T>& h, std::int64_t n,
                                                              std::type_identity_t<std::span<const Tensor<T>>> anchors) {
  FIBER_CHECK(anchors.size() == h.box_regression.size(), "image_predictions: ", anchors.size(), " anchor levels for ",
              h.box_regression.size(), " head levels");
  std::vector<detection::LevelPredictions<T>> out;
  for (std::size_t l = 0; l < anchors.size(); ++l) {
    FIBER_CHECK(n >= 0 && n < h.box_regression[l].size(0), "image_predictions: image ", n, " of ",
                h.box_regression[l].size(0));
    out.push_back({h.box_regression[l].value().select(0, n), h.centerness[l].value().select(0, n),
                   h.token_logits[l].value().select(0, n), anchors[l]});
  }
  return out;
}

}  // namespace fiber::models
