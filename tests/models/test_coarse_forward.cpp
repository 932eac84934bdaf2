// The three paths of the tiny coarse model run end to end on random weights: shapes, unit-norm
// ITC features, and clear errors for inputs of the wrong shape.
#include <doctest/doctest.h>

#include <cmath>

#include "fiber/core/rng.hpp"
#include "fiber/models/fiber_coarse.hpp"

using namespace fiber;
using Tiny = models::FiberCoarse<float, models::FiberTinyCoarse>;

namespace {
void randomize(Tiny& m, std::uint64_t seed) {
  Generator gen(seed);
  m.visit("", [&](const std::string&, nn::Entry<float> e) {
    if (e.role != nn::Role::parameter) return;
    e.var->value().copy_(randn<float>(e.var->shape(), gen, 0.f, 0.1f));
  });
}
}  // namespace

TEST_CASE("tiny coarse model: unimodal and fused paths") {
  Tiny m;
  randomize(m, 1);
  Generator gen(2);
  const Var<float> images(randn<float>({2, 3, 128, 128}, gen));
  const Tensor<std::int64_t> ids = Tensor<std::int64_t>::from_data({2, 5}, {0, 10, 11, 12, 2, 0, 13, 2, 1, 1});
  const Tensor<std::int64_t> mask = Tensor<std::int64_t>::from_data({2, 5}, {1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
  NoGrad guard;
  const Var<float> ei = m.image_embedding(images);
  const Var<float> et = m.text_embedding(ids, mask);
  REQUIRE(ei.shape() == Shape{2, 16});
  REQUIRE(et.shape() == Shape{2, 16});
  for (int b = 0; b < 2; ++b) {
    double n = 0;
    for (int i = 0; i < 16; ++i) n += double(ei.value().data()[b * 16 + i]) * ei.value().data()[b * 16 + i];
    CHECK(std::sqrt(n) == doctest::Approx(1.0).epsilon(1e-5));
  }
  const auto f = m.fuse(images, ids, mask);
  CHECK(f.text_feats.shape() == Shape{2, 5, 16});
  CHECK(f.image_feats.shape() == Shape{2, 16, 16});
  CHECK(f.cls_feats.shape() == Shape{2, 32});
  CHECK(m.itm_logits(f.cls_feats).shape() == Shape{2, 2});
  CHECK(m.rank_score(f.cls_feats).shape() == Shape{2, 1});
  CHECK(m.mlm_logits(f.text_feats).shape() == Shape{2, 5, 1000});
}

TEST_CASE("tiny coarse model: wrong inputs are clear errors") {
  Tiny m;
  NoGrad guard;
  const Tensor<std::int64_t> ids = Tensor<std::int64_t>::zeros({1, 4});
  CHECK_THROWS_WITH_AS(m.image_embedding(Var<float>(Tensor<float>::zeros({1, 3, 96, 96}))),
                       doctest::Contains("images must be [B, 3, 128, 128]"), Error);
  CHECK_THROWS_WITH_AS(m.text_embedding(ids, Tensor<std::int64_t>::ones({1, 5})), doctest::Contains("does not match ids"),
                       Error);
  CHECK_THROWS_WITH_AS(m.text_embedding(Tensor<std::int64_t>::zeros({1, 41}), Tensor<std::int64_t>::ones({1, 41})),
                       doctest::Contains("at most 40"), Error);
  CHECK_THROWS_AS(m.text_embedding(Tensor<std::int64_t>::full({1, 3}, 5000), Tensor<std::int64_t>::ones({1, 3})), Error);
}
