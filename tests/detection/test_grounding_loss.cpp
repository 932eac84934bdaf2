// The fine-grained losses against the OFFICIAL ATSSLossComputation.__call__ (dot-product token
// loss; tests/reference/make_detection.py, float32): the token focal loss, the GIoU box loss
// (× REG_LOSS_WEIGHT 2) and the centerness BCE of two images over 245 anchors and 256 tokens with
// text masks of 20 and 12 tokens, and each loss's gradient with respect to its head output.
// Tolerances: values 1e-5 relative (float32 sums of ~10^4 terms in another order), gradients
// |d| <= 1e-5 |g| + 1e-6 · max |g|. Also float64 gradchecks of the fused focal and GIoU nodes
// (inverted and clamped boxes included), the no-positive case and errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "fiber/detection/anchors.hpp"
#include "fiber/detection/grounding_loss.hpp"
#include "gradcheck_util.hpp"
#include "detection_fixture.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::Var;
using fiber::test::detection_fixture;
using fiber::test::rnd;
namespace det = fiber::detection;
using Vars = std::span<const Var<double>>;

namespace {
double max_abs(const Tensor<float>& t) {
  double m = 0;
  for (float v : t.to_vector()) m = std::max(m, double(std::abs(v)));
  return m;
}
}  // namespace

TEST_CASE("grounding losses equal the official ATSS loss (token focal, GIoU, centerness) and their gradients") {
  const Tensor<std::int64_t> g = detection_fixture<std::int64_t>("grids");
  std::vector<std::int64_t> per_level;
  for (std::int64_t l = 0; l < g.size(0); ++l) per_level.push_back(g.data()[2 * l] * g.data()[2 * l + 1]);
  const Tensor<float> anchors = detection_fixture("grid_anchors");
  std::vector<det::AtssTargets<float>> targets;
  for (int i = 0; i < 2; ++i) {
    const std::string p = "atss" + std::to_string(i) + "_";
    targets.push_back(det::atss_targets(anchors, per_level, detection_fixture(p + "gt"), detection_fixture(p + "positive_map")));
  }
  Var<float> logits(detection_fixture("loss_logits"), true), box(detection_fixture("loss_box_regression"), true),
      ctr(detection_fixture("loss_centerness"), true);
  const auto losses = det::grounding_losses(logits, box, ctr, anchors, targets, detection_fixture("loss_text_mask"));
  CHECK(losses.positives == 40);
  const auto want = detection_fixture("loss_values").to_vector();  // token, box, centerness
  CHECK(losses.token.value().item() == doctest::Approx(want[0]).epsilon(1e-5));
  CHECK(losses.box.value().item() == doctest::Approx(want[1]).epsilon(1e-5));
  CHECK(losses.centerness.value().item() == doctest::Approx(want[2]).epsilon(1e-5));
  struct Part {
    Var<float> loss;
    Var<float>* leaf;
    const char* name;
  };
  for (const Part& part : {Part{losses.token, &logits, "token_grad_logits"}, Part{losses.box, &box, "box_grad_box_regression"},
                           Part{losses.centerness, &ctr, "centerness_grad_centerness"}}) {
    CAPTURE(part.name);
    logits.zero_grad();
    box.zero_grad();
    ctr.zero_grad();
    Var<float>(part.loss).backward(Tensor<float>::ones({}), true);
    const Tensor<float> want_grad = detection_fixture(std::string("loss_") + part.name);
    REQUIRE(part.leaf->grad().defined());
    FIBER_CHECK_CLOSE(part.leaf->grad(), want_grad, 1e-5, 1e-6 * max_abs(want_grad));
  }
}

TEST_CASE("gradcheck: token_sigmoid_focal_loss (masked tokens get no gradient) and giou_loss") {
  const auto x = rnd({2, 3, 5}, 21, -3, 3);
  Tensor<double> t = Tensor<double>::zeros({2, 3, 5});
  t.select(1, 0).select(1, 1).fill_(1);  // a few positive targets
  t.select(2, 4).fill_(1);
  Tensor<double> mask = Tensor<double>::ones({2, 5});
  mask.select(0, 1).narrow(0, 3, 2).fill_(0);
  CHECK_GRADCHECK([&](Vars v) { return det::token_sigmoid_focal_loss(v[0], t, mask); }, x);
  CHECK_GRADCHECK([&](Vars v) { return det::token_sigmoid_focal_loss(v[0], t, Tensor<double>(), {0.6, 1.5}); }, x);
  CHECK_GRADCHECK([&](Vars v) { return det::token_sigmoid_focal_loss(v[0], t, mask, {-1, 0}); }, x);
  {
    Var<double> v(x, true);
    det::token_sigmoid_focal_loss(v, t, mask).backward();
    CHECK(v.grad().select(0, 1).select(1, 3).to_vector() == std::vector<double>(3, 0.0));
  }
  // GIoU through the decoder: overlapping, disjoint, inverted (dw very negative) and clamped boxes.
  const Tensor<double> anchors = Tensor<double>::from_data(
      {5, 4}, {0, 0, 63, 63, 10, 20, 40, 35, -28, -28, 35, 35, 100, 100, 131, 131, 5, 5, 20, 30});
  const Tensor<double> target = rnd({5, 4}, 22, -0.5, 0.5);
  Tensor<double> codes = rnd({5, 4}, 23, -0.8, 0.8);
  codes.select(0, 3).select(0, 0).fill_(30.0);  // far away: no overlap
  codes.select(0, 4).select(0, 2).fill_(-30.0);  // width exp(-6)·16 < 1: x2 < x1, raised to x1
  codes.select(0, 2).select(0, 3).fill_(25.0);   // dh clamped: no gradient to dh
  const Tensor<double> w = rnd({5}, 24, 0.1, 1);
  CHECK_GRADCHECK([&](Vars v) { return det::giou_loss(v[0], target, anchors, w); }, codes);
  CHECK_GRADCHECK([&](Vars v) { return det::giou_loss(v[0], target, anchors, Tensor<double>()); }, codes);
  Var<double> v(codes, true);
  det::giou_loss(v, target, anchors, w).backward();
  CHECK(v.grad().to_vector()[2 * 4 + 3] == 0.0);
}

TEST_CASE("grounding losses with no positive anchor: token loss / 1, zero box and centerness losses") {
  const std::array<std::array<std::int64_t, 2>, 5> grids{{{4, 4}, {2, 2}, {1, 1}, {1, 1}, {1, 1}}};
  const Tensor<double> anchors = det::fiber_anchors<double>(grids);
  const std::int64_t A = anchors.size(0);
  const std::int64_t per_level[] = {16, 4, 1, 1, 1};
  std::vector<det::AtssTargets<double>> targets{
      det::atss_targets(anchors, per_level, Tensor<double>::zeros({0, 4}), Tensor<double>::zeros({0, 8}))};
  Var<double> logits(rnd({1, A, 8}, 25), true), box(rnd({1, A, 4}, 26), true), ctr(rnd({1, A}, 27), true);
  const auto l = det::grounding_losses(logits, box, ctr, anchors, targets, Tensor<double>());
  CHECK(l.positives == 0);
  CHECK(l.box.value().item() == 0.0);
  CHECK(l.centerness.value().item() == 0.0);
  // The token loss divided by 1, written out from the focal formula (α 0.25, γ 2): unmatched
  // anchors target only the last token.
  double want = 0;
  const auto x = logits.value().to_vector();
  for (std::int64_t i = 0; i < A * 8; ++i) {
    const double t = (i % 8 == 7) ? 1 : 0, p = 1 / (1 + std::exp(-x[std::size_t(i)]));
    const double ce = -(t * std::log(p) + (1 - t) * std::log(1 - p));
    const double pt = p * t + (1 - p) * (1 - t), at = 0.25 * t + 0.75 * (1 - t);
    want += at * ce * (1 - pt) * (1 - pt);
  }
  CHECK(l.token.value().item() == doctest::Approx(want).epsilon(1e-12));
  l.total().backward();
  CHECK(box.grad().to_vector() == std::vector<double>(std::size_t(A * 4), 0.0));
}

TEST_CASE("grounding losses: wrong shapes are errors naming them") {
  const Var<double> x(Tensor<double>::zeros({1, 2, 3}));
  CHECK_THROWS_WITH_AS(det::token_sigmoid_focal_loss(x, Tensor<double>::zeros({1, 2, 4}), Tensor<double>()),
                       doctest::Contains("targets of shape [1, 2, 4] for logits of shape [1, 2, 3]"), fiber::Error);
  CHECK_THROWS_WITH_AS(det::token_sigmoid_focal_loss(x, Tensor<double>::zeros({1, 2, 3}), Tensor<double>::ones({1, 2})),
                       doctest::Contains("text mask must be [1, 3]"), fiber::Error);
  const Var<double> c(Tensor<double>::zeros({2, 4}));
  CHECK_THROWS_WITH_AS(det::giou_loss(c, Tensor<double>::zeros({2, 4}), Tensor<double>::zeros({3, 4}), Tensor<double>()),
                       doctest::Contains("must all be [P, 4]"), fiber::Error);
  const Tensor<double> anchors = Tensor<double>::zeros({2, 4});
  std::vector<det::AtssTargets<double>> none;
  CHECK_THROWS_WITH_AS(det::grounding_losses(x, Var<double>(Tensor<double>::zeros({1, 2, 4})),
                                             Var<double>(Tensor<double>::zeros({1, 2})), anchors, none, Tensor<double>()),
                       doctest::Contains("logits must be [0, 2, L]"), fiber::Error);
}
