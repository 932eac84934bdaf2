// Retrieval evaluation: recall@k on a hand-worked score table (expected values worked out below,
// not by the code), and the all-pairs ITM scores against the model's plain fused pass on each pair.
#include <doctest/doctest.h>

#include "fiber/models/coarse_init.hpp"
#include "fiber/train/retrieval_eval.hpp"

using namespace fiber;

TEST_CASE("retrieval_recall: ranks as the official recall on a hand-worked table") {
  // Images 0..3 (rows) x texts 0..3 (columns); text t describes image text_image[t]; image 3 has
  // no caption (no text query for it) and scores lowest everywhere (it never outranks a hit).
  const Tensor<float> scores = Tensor<float>::from_data({4, 4}, {0.9f, 0.1f, 0.5f, 0.2f,    //
                                                                 0.3f, 0.2f, 0.4f, 0.8f,    //
                                                                 0.1f, 0.7f, 0.6f, 0.3f,    //
                                                                 0.0f, 0.0f, 0.0f, 0.0f});
  const std::vector<std::int64_t> text_image = {0, 0, 1, 2};
  const train::RetrievalRecall r = train::retrieval_recall(scores, text_image);
  // Image retrieval, per text column: t0 image 0 first (hit); t1 image 0 third; t2 image 1 third;
  // t3 image 2 second. R@1 = 1/4, R@5 = 4/4.
  CHECK(r.image_r1 == doctest::Approx(0.25));
  CHECK(r.image_r5 == doctest::Approx(1.0));
  // Text retrieval, per captioned image row: image 0's best caption (0.9) first; image 1's (0.4)
  // second; image 2's (0.3) third. R@1 = 1/3 (three queries, not four), R@5 = 1.
  CHECK(r.text_r1 == doctest::Approx(1.0 / 3.0));
  CHECK(r.text_r5 == doctest::Approx(1.0));
  CHECK(r.text_r10 == doctest::Approx(1.0));

  CHECK_THROWS_WITH_AS(train::retrieval_recall(scores, {0, 0, 1, 4}), doctest::Contains("outside [0, 4)"), Error);
  CHECK_THROWS_WITH_AS(train::retrieval_recall(scores, {0, 1}), doctest::Contains("for 2 texts"), Error);
}

TEST_CASE("itm_scores: every pair's score equals the plain fused pass on that pair alone") {
  constexpr models::FiberCoarseConfig C = models::FiberDemoCoarse;
  models::FiberCoarse<float, C> model;
  models::init_coarse(model, 7);
  Generator gen(11);
  const std::int64_t Ni = 3, Nt = 5, L = 9, S = C.swin.image_size;
  const Tensor<float> images = randn<float>({Ni, 3, S, S}, gen);
  Tensor<std::int64_t> ids = Tensor<std::int64_t>::full({Nt, L}, C.text.pad_token_id);
  Tensor<std::int64_t> masks = Tensor<std::int64_t>::zeros({Nt, L});
  for (std::int64_t t = 0; t < Nt; ++t) {
    const std::int64_t len = 3 + t;  // different lengths: padding matters
    for (std::int64_t i = 0; i < len; ++i) {
      ids.at({t, i}) = i == 0 ? 0 : i == len - 1 ? 2 : 5 + (t * 37 + i * 11) % (C.text.vocab_size - 6);
      masks.at({t, i}) = 1;
    }
  }
  const Tensor<float> got = train::itm_scores(model, images, ids, masks, /*batch=*/2);  // batches cut across texts
  REQUIRE(got.shape() == Shape{Ni, Nt});
  NoGrad guard;
  for (std::int64_t i = 0; i < Ni; ++i)
    for (std::int64_t t = 0; t < Nt; ++t) {
      const float want = model
                             .rank_score(model.fuse(Var<float>(images.narrow(0, i, 1)), ids.narrow(0, t, 1),
                                                    masks.narrow(0, t, 1))
                                             .cls_feats)
                             .value()
                             .item();
      INFO("image " << i << ", text " << t);
      CHECK(got.at({i, t}) == doctest::Approx(want).epsilon(1e-5));  // float32, another batch shape
    }
}
