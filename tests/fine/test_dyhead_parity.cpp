// The fine-grained FPN and DyHead against the OFFICIAL modules (tests/reference/make_dyhead.py runs
// fpn.py's FPN + LastLevelP6P7 and vldyhead.py's VLDyHead, float64, its CUDA-only deformable conv
// replaced by torchvision's reading the offsets and mask as the CUDA kernel does, including the
// prefix it reads when a conv's output is smaller than the offsets' level). Tiny configuration,
// two images, five levels of odd sizes, padded text tokens.
// Tolerances: float64 within 1e-10 of the largest reference value (the same operations in another
// order); float32 within 2e-4 (float32 rounding through two DyConv blocks).
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "tiny_fine.hpp"

using namespace fiber;

using test::TinyFine;
using test::relative_error;

namespace {
template <class T>
void check_parity(double tol) {
  TinyFine<T> m;
  test::load_tiny_fine(m);
  auto in = [](const char* name) { return Var<T>(io::load_tensor<T>(test::fine_io(), name)); };
  auto ref = [](const std::string& name) { return io::load_tensor<double>(test::fine_io(), name); };
  NoGrad no_grad;
  const std::vector<Var<T>> p = m.fpn({in("c3"), in("c4"), in("c5")});
  REQUIRE(p.size() == 5);
  for (int l = 0; l < 5; ++l) {
    CAPTURE(l);
    const char* level_name[] = {"p3", "p4", "p5", "p6", "p7"};
    CHECK(relative_error(p[std::size_t(l)].value(), ref(level_name[l])) <= tol);
  }
  const models::HeadOutputs<T> out = m.head(p, in("text"));
  for (int l = 0; l < 5; ++l) {
    CAPTURE(l);
    const std::string s = std::to_string(l);
    CHECK(relative_error(out.box_regression[std::size_t(l)].value(), ref("box" + s)) <= tol);
    CHECK(relative_error(out.centerness[std::size_t(l)].value(), ref("centerness" + s)) <= tol);
    CHECK(relative_error(out.token_logits[std::size_t(l)].value(), ref("logits" + s)) <= tol);
  }
}
}  // namespace

TEST_CASE("FPN and DyHead equal the official modules (float64)") { check_parity<double>(1e-10); }

TEST_CASE("FPN and DyHead equal the official modules (float32)") { check_parity<float>(2e-4); }

TEST_CASE("DyHead keys are the official state-dict keys, loaded strictly") {
  TinyFine<float> m;
  std::vector<std::string> keys;
  m.visit("", [&](const std::string& k, nn::Entry<float>) { keys.push_back(k); });
  const io::Checkpoint w = io::open_checkpoint(test::fine_fixture("dyhead_weights.safetensors"));
  CHECK(keys.size() == w.names().size());
  CHECK(std::find(keys.begin(), keys.end(), "head.dyhead_tower.1.DyConv.2.bn.weight") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "head.dyhead_tower.0.relu.fc.2.weight") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "fpn.top_blocks.p7.bias") != keys.end());
}

TEST_CASE("the offsets a smaller conv output reads are the prefix of its level's buffer") {
  // offset_mask [1, 27, 2, 3] numbered 0..161; a conv output of 1 x 2 reads offsets 0..35 (the
  // first 18 · 2 values of channels 0-17 in memory order) and the sigmoid of mask values 108..125.
  const Var<double> om(Tensor<double>::arange(162).reshape({1, 27, 2, 3}));
  const auto [offset, mask] = models::level_offsets(models::split_offset_mask(om), 1, 2);
  REQUIRE(offset.shape() == Shape({1, 18, 1, 2}));
  REQUIRE(mask.shape() == Shape({1, 9, 1, 2}));
  const auto o = offset.value().contiguous().to_vector();
  for (std::size_t i = 0; i < o.size(); ++i) CHECK(o[i] == double(i));
  const auto mv = mask.value().contiguous().to_vector();
  for (std::size_t i = 0; i < mv.size(); ++i) CHECK(mv[i] == doctest::Approx(1 / (1 + std::exp(-double(108 + i)))));
  CHECK_THROWS_WITH_AS(models::level_offsets(models::split_offset_mask(om), 3, 3), doctest::Contains("would read past the 2x3 offsets"), Error);
}
