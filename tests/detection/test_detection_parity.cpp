// Parity with the OFFICIAL fine-grained code (tests/reference/make_detection.py runs
// maskrcnn_benchmark from the microsoft/FIBER mirror, float32): Detectron cell anchors and the
// anchor grid of FIBER's five levels, the box coder both ways (past the clamp too), IoU with the +1
// convention, and the ATSS targets of three images (assignment, box and token targets,
// centerness). Tolerances: anchors exact; IoU, encode, decode and centerness within 2 float32 ulps
// of the value (|d| <= 2.4e-7 |v| + 1e-6: the same operations, the compiler may fuse a multiply-add);
// assignments and token targets exact.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "fiber/detection/anchors.hpp"
#include "fiber/detection/atss.hpp"
#include "fiber/ops/index.hpp"
#include "detection_fixture.hpp"
#include "test_util.hpp"

using fiber::Tensor;
using fiber::test::detection_fixture;
namespace det = fiber::detection;

namespace {
constexpr double kRtol = 2.4e-7, kAtol = 1e-6;
}  // namespace

TEST_CASE("cell anchors equal Detectron's generate_anchors (ratios, sizes, numpy's half-to-even rounding)") {
  struct Cell {
    const char* name;
    std::int64_t stride;
    std::vector<double> sizes, ratios;
  };
  const Cell cells[] = {{"fiber_p3", 8, {64}, {1.0}},
                        {"three_ratios", 16, {32, 64, 128}, {0.5, 1.0, 2.0}},
                        {"half_even", 5, {10, 25}, {4.0, 0.25}},
                        {"odd", 7, {20.0, 45.5}, {4.0, 0.7}}};
  for (const Cell& c : cells) {
    CAPTURE(c.name);
    const Tensor<double> want = detection_fixture<double>(std::string("cell_") + c.name);
    CHECK(det::cell_anchors(c.stride, c.sizes, c.ratios).to_vector() == want.to_vector());
  }
}

TEST_CASE("FIBER's anchors over five feature maps equal AnchorGenerator.grid_anchors") {
  const Tensor<std::int64_t> g = detection_fixture<std::int64_t>("grids");
  std::vector<std::array<std::int64_t, 2>> grids;
  for (std::int64_t l = 0; l < g.size(0); ++l) grids.push_back({g.data()[2 * l], g.data()[2 * l + 1]});
  const Tensor<float> want = detection_fixture("grid_anchors");
  const Tensor<float> got = det::fiber_anchors<float>(grids);
  REQUIRE(got.shape() == want.shape());
  CHECK(got.to_vector() == want.to_vector());
}

TEST_CASE("box coder and IoU equal the official BoxCoder and boxlist_iou (float32)") {
  const det::BoxCoder coder;
  const Tensor<float> anchors = detection_fixture("coder_anchors");
  FIBER_CHECK_CLOSE(coder.encode(detection_fixture("coder_gt"), anchors), detection_fixture("coder_encoded"), kRtol, kAtol);
  FIBER_CHECK_CLOSE(coder.decode(detection_fixture("coder_codes"), anchors), detection_fixture("coder_decoded"), kRtol, kAtol);
  FIBER_CHECK_CLOSE(det::box_iou(detection_fixture("iou_a"), detection_fixture("iou_b")), detection_fixture("iou"), kRtol, kAtol);
}

TEST_CASE("ATSS targets equal the official prepare_targets and compute_centerness_targets") {
  const Tensor<std::int64_t> g = detection_fixture<std::int64_t>("grids");
  std::vector<std::int64_t> per_level;
  for (std::int64_t l = 0; l < g.size(0); ++l) per_level.push_back(g.data()[2 * l] * g.data()[2 * l + 1]);
  const Tensor<float> anchors = detection_fixture("grid_anchors");
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    const std::string p = "atss" + std::to_string(i) + "_";
    const auto t = det::atss_targets(anchors, per_level, detection_fixture(p + "gt"), detection_fixture(p + "positive_map"));
    // labels: box index + 1, 0 where unmatched.
    const auto labels = detection_fixture<std::int64_t>(p + "labels").to_vector();
    std::vector<std::int64_t> got(t.matched.size());
    for (std::size_t a = 0; a < got.size(); ++a) got[a] = t.matched[a] + 1;
    CHECK(got == labels);
    CHECK(t.positives() > 0);
    CHECK(t.token_targets.to_vector() == detection_fixture(p + "token_targets").to_vector());
    FIBER_CHECK_CLOSE(t.box_targets, detection_fixture(p + "box_targets"), kRtol, kAtol);
    // Centerness of the positives, in anchor order.
    std::vector<std::int64_t> pos;
    for (std::size_t a = 0; a < t.matched.size(); ++a)
      if (t.matched[a] >= 0) pos.push_back(std::int64_t(a));
    const auto idx = Tensor<std::int64_t>::from_data({std::int64_t(pos.size())}, pos);
    const Tensor<float> pos_targets = fiber::index_select(t.box_targets, 0, idx);
    const Tensor<float> pos_anchors = fiber::index_select(anchors, 0, idx);
    FIBER_CHECK_CLOSE(det::centerness_targets(pos_targets, pos_anchors), detection_fixture(p + "centerness"), kRtol, kAtol);
  }
}
