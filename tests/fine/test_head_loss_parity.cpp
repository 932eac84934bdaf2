// The head's outputs into the detection layer, against the OFFICIAL code on the same tiny model
// (tests/reference/make_dyhead.py): the ATSS loss (token focal, GIoU, centerness) of two images'
// boxes on the FPN + DyHead outputs, the gradients of its total through the whole head down to C3
// and into FPN, tower and projection weights, and the ATSSPostProcessor's detections.
// Tolerances: float64 losses within 1e-6 relative, gradients within 1e-6 of their largest value,
// detections' scores within 1e-6 relative and boxes within 1e-5 px: the reference runs in float64
// but the official loss and post-processing code make some of their own tensors and constants in
// float32 (measured deviations ~4e-7), so float64 cannot be held to 1e-10 here as the head is.
// float32 losses within 2e-4 relative.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "fiber/detection/atss.hpp"
#include "fiber/detection/grounding_loss.hpp"
#include "fiber/models/fine_head_io.hpp"
#include "test_util.hpp"
#include "tiny_fine.hpp"

using namespace fiber;
namespace det = fiber::detection;

using test::TinyFine;

namespace {
template <class T>
Tensor<T> fx(const std::string& name) { return io::load_tensor<T>(test::fine_io(), name); }

template <class T>
struct Run {
  TinyFine<T> model;
  Var<T> c3;
  models::HeadOutputs<T> out;
  det::GroundingLosses<T> losses;
};

template <class T>
void run_head(Run<T>& r) {
  test::load_tiny_fine(r.model);
  r.c3 = Var<T>(fx<T>("c3"), true);
  const std::vector<Var<T>> p = r.model.fpn({r.c3, Var<T>(fx<T>("c4")), Var<T>(fx<T>("c5"))});
  r.out = r.model.head(p, Var<T>(fx<T>("text")));
  const models::FlatHeadOutputs<T> flat = models::flatten_head_outputs(r.out);
  const std::vector<Tensor<T>> levels = models::level_anchors(r.out);
  std::vector<std::int64_t> per_level;
  for (const Tensor<T>& a : levels) per_level.push_back(a.size(0));
  const Tensor<T> anchors = concat(levels, 0);
  std::vector<det::AtssTargets<T>> targets;
  for (int i = 0; i < 2; ++i)
    targets.push_back(det::atss_targets(anchors, per_level, fx<T>("gt" + std::to_string(i)),
                                        fx<T>("positive_map" + std::to_string(i))));
  r.losses = det::grounding_losses(flat.logits, flat.box_regression, flat.centerness, anchors, targets, fx<T>("text_mask"));
}
}  // namespace

TEST_CASE("ATSS losses on the head's outputs, and their gradients through the head, equal the official (float64)") {
  Run<double> r;
  run_head(r);
  MESSAGE("positives ", r.losses.positives);
  const auto want = fx<double>("losses").to_vector();
  CHECK(r.losses.token.value().item() == doctest::Approx(want[0]).epsilon(1e-6));
  CHECK(r.losses.box.value().item() == doctest::Approx(want[1]).epsilon(1e-6));
  CHECK(r.losses.centerness.value().item() == doctest::Approx(want[2]).epsilon(1e-6));
  r.losses.total().backward();
  CHECK(test::relative_error(r.c3.grad(), fx<double>("grad.c3")) <= 1e-6);
  const auto named = nn::named_parameters<double>(r.model);
  for (const char* key : {"head.dot_product_projection_text.weight", "head.dyhead_tower.0.offset.weight",
                          "head.dyhead_tower.1.DyConv.0.conv.weight", "head.log_scale", "fpn.fpn_inner2.weight"}) {
    CAPTURE(key);
    const auto it = std::find_if(named.begin(), named.end(), [&](const auto& kv) { return kv.first == key; });
    REQUIRE(it != named.end());
    REQUIRE(it->second->grad().defined());
    CHECK(test::relative_error(it->second->grad(), fx<double>(std::string("grad.") + key)) <= 1e-6);
  }
}

TEST_CASE("ATSS losses on the head's outputs equal the official (float32)") {
  Run<float> r;
  {
    NoGrad no_grad;
    run_head(r);
  }
  const auto want = fx<double>("losses").to_vector();
  CHECK(r.losses.token.value().item() == doctest::Approx(want[0]).epsilon(2e-4));
  CHECK(r.losses.box.value().item() == doctest::Approx(want[1]).epsilon(2e-4));
  CHECK(r.losses.centerness.value().item() == doctest::Approx(want[2]).epsilon(2e-4));
}

TEST_CASE("detections from the head's outputs equal the official ATSSPostProcessor") {
  TinyFine<double> m;
  test::load_tiny_fine(m);
  NoGrad no_grad;
  const auto p = m.fpn({Var<double>(fx<double>("c3")), Var<double>(fx<double>("c4")), Var<double>(fx<double>("c5"))});
  const models::HeadOutputs<double> out = m.head(p, Var<double>(fx<double>("text")));
  const std::vector<Tensor<double>> anchors = models::level_anchors(out);
  const det::PhraseTokens phrases{{1, 2}, {3}, {4, 5}};
  for (int n = 0; n < 2; ++n) {
    CAPTURE(n);
    const std::string i = std::to_string(n);
    const auto size = fx<std::int64_t>("image_size" + i).to_vector();
    const auto levels = models::image_predictions(out, n, anchors);
    det::PostprocessOptions opt;
    opt.detections_per_image = 0;  // as the fixture (see make_dyhead.py)
    const det::Detections<double> got = det::postprocess<double>(levels, phrases, size[0], size[1], opt);
    const Tensor<double> boxes = fx<double>("det" + i + "_boxes"), scores = fx<double>("det" + i + "_scores");
    const auto labels = fx<std::int64_t>("det" + i + "_labels").to_vector();
    REQUIRE(got.size() == std::int64_t(labels.size()));
    std::vector<std::size_t> order(labels.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return scores.data()[a] > scores.data()[b]; });
    for (std::size_t k = 0; k < order.size(); ++k) {
      CAPTURE(k);
      CHECK(got.labels[k] == labels[order[k]]);
      CHECK(got.scores.data()[k] == doctest::Approx(scores.data()[order[k]]).epsilon(1e-6));
      for (int c = 0; c < 4; ++c) CHECK(std::abs(got.boxes.data()[4 * k + c] - boxes.data()[4 * order[k] + c]) <= 1e-5);
    }
  }
}
