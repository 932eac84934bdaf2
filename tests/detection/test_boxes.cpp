// Boxes, anchors and ATSS by hand: the +1 IoU convention, encode/decode round trips and the
// clamp, a cell anchor worked out on paper, an ATSS case small enough to follow, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "fiber/detection/anchors.hpp"
#include "fiber/detection/atss.hpp"
#include "test_util.hpp"

using fiber::Tensor;
namespace det = fiber::detection;

namespace {
Tensor<double> box_tensor(std::vector<double> v) {
  const auto n = std::int64_t(v.size() / 4);
  return Tensor<double>::from_data({n, 4}, v);
}
}  // namespace

TEST_CASE("box_iou counts pixels inclusively (+1)") {
  // [0, 0, 9, 9] is 10x10 = 100 pixels; [5, 0, 14, 9] overlaps it in 5x10 = 50: IoU 50 / 150.
  const auto iou = det::box_iou(box_tensor({0, 0, 9, 9}), box_tensor({5, 0, 14, 9, 0, 0, 9, 9, 10, 10, 20, 20, 9, 9, 9, 9}));
  CHECK(iou.to_vector()[0] == doctest::Approx(50.0 / 150));
  CHECK(iou.to_vector()[1] == 1.0);
  CHECK(iou.to_vector()[2] == 0.0);                         // touching corners do not overlap
  CHECK(iou.to_vector()[3] == doctest::Approx(1.0 / 100));  // a single pixel inside
}

TEST_CASE("BoxCoder: encode then decode gives the box back; dw and dh are clamped at log(1000/16)") {
  const det::BoxCoder coder;
  const auto anchors = box_tensor({0, 0, 63, 63, 10, 20, 40, 35, -28, -28, 35, 35});
  const auto gt = box_tensor({5, 6, 30, 50, 0, 0, 99, 9, 1, 2, 3, 4});
  FIBER_CHECK_CLOSE(coder.decode(coder.encode(gt, anchors), anchors), gt, 1e-12, 1e-12);
  // A box equal to its anchor encodes to zeros.
  CHECK(coder.encode(anchors, anchors).to_vector() == std::vector<double>(12, 0.0));
  // dw = 100 / 5 = 20 is clamped to log(62.5): the width becomes 64 · 62.5 = 4000.
  const auto wide = coder.decode(box_tensor({0, 0, 100, 0}), box_tensor({0, 0, 63, 63}));
  CHECK(wide.to_vector()[2] - wide.to_vector()[0] + 1 == doctest::Approx(4000.0));
}

TEST_CASE("cell_anchors by hand: stride 8, size 64 is [-28, -28, 35, 35]; ratio 2 halves the width") {
  const double size = 64, one = 1, two = 2;
  CHECK(det::cell_anchors(8, {&size, 1}, {&one, 1}).to_vector() == std::vector<double>{-28, -28, 35, 35});
  // Ratio h/w = 2 at stride 8: w = round(sqrt(64 / 2)) = round(5.66) = 6, h = 12; scaled by 8: 48 x 96.
  CHECK(det::cell_anchors(8, {&size, 1}, {&two, 1}).to_vector() == std::vector<double>{-20, -44, 27, 51});
  const auto grid = det::grid_anchors<float>(2, 3, 8, det::cell_anchors(8, {&size, 1}, {&one, 1}));
  REQUIRE(grid.shape() == fiber::Shape({6, 4}));
  CHECK(grid.select(0, 4).to_vector() == std::vector<float>{-20, -20, 43, 43});  // row 1, column 1
}

TEST_CASE("ATSS by hand: one level, one box, the nearest anchors above mean + std and centred inside win") {
  // Five 10x10 anchors in a row at x = 0, 10, 20, 30, 40; topk 3; a box over the first two.
  const auto anchors = box_tensor({0, 0, 9, 9, 10, 0, 19, 9, 20, 0, 29, 9, 30, 0, 39, 9, 40, 0, 49, 9});
  const std::int64_t per_level[] = {5};
  const auto gt = box_tensor({0, 0, 19, 9});
  // Candidates: anchors 0, 1 (IoU 0.5 each) and 2 (0); threshold = mean + std = 1/3 + 0.2887.
  const auto m = det::atss_assign(anchors, per_level, gt, {3, 1});
  CHECK(m == std::vector<std::int64_t>{-1, -1, -1, -1, -1});  // 0.5 < 0.622: nothing is positive
  // A box over anchors 0..2: IoUs 1/3, 1/3, 1/3 -> std 0, all three pass; centres inside.
  CHECK(det::atss_assign(anchors, per_level, box_tensor({0, 0, 29, 9}), {3, 1}) ==
        std::vector<std::int64_t>{0, 0, 0, -1, -1});
  // Two boxes wanting anchor 1: the higher IoU wins (box 1 is exactly anchor 1).
  CHECK(det::atss_assign(anchors, per_level, box_tensor({0, 0, 29, 9, 10, 0, 19, 9}), {3, 1}) ==
        std::vector<std::int64_t>{0, 1, 0, -1, -1});
  // Unmatched anchors get the "no object" token (the last column); no boxes at all: all unmatched.
  const auto t = det::atss_targets(anchors, per_level, Tensor<double>::zeros({0, 4}), Tensor<double>::zeros({0, 4}));
  CHECK(t.positives() == 0);
  CHECK(t.token_targets.select(1, 3).to_vector() == std::vector<double>(5, 1.0));
  CHECK(t.token_targets.select(1, 0).to_vector() == std::vector<double>(5, 0.0));
}

TEST_CASE("detection: wrong shapes are errors naming them") {
  const auto a = box_tensor({0, 0, 1, 1});
  CHECK_THROWS_WITH_AS(det::box_iou(Tensor<double>::zeros({2, 3}), a), doctest::Contains("must be [N, 4] boxes"),
                       fiber::Error);
  CHECK_THROWS_WITH_AS(det::BoxCoder{}.encode(box_tensor({0, 0, 1, 1, 0, 0, 2, 2}), a),
                       doctest::Contains("2 gt boxes for 1 anchors"), fiber::Error);
  const std::int64_t wrong[] = {2};
  CHECK_THROWS_WITH_AS(det::atss_assign(a, wrong, a), doctest::Contains("the levels hold 2 anchors, the anchor tensor 1"),
                       fiber::Error);
  const std::int64_t one[] = {1};
  CHECK_THROWS_WITH_AS(det::atss_targets(a, one, a, Tensor<double>::zeros({2, 8})),
                       doctest::Contains("positive map must be [G, L] with one row per box (G = 1)"), fiber::Error);
  const double bad = -1, one_d = 1;
  CHECK_THROWS_WITH_AS(det::cell_anchors(8, {&bad, 1}, {&one_d, 1}), doctest::Contains("size -1 must be positive"),
                       fiber::Error);
}
