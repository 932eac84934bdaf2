// The random parts of coarse pre-training, whose parity test feeds the choices in: MLM masking
// (HF DataCollatorForLanguageModeling's rule), the hard-negative draw (multinomial over
// softmax(sim) with the diagonal zeroed) and the queue's wrap-around. Statistical bounds are 5
// standard deviations (a false failure about once in 3.5 million runs; the seeds are fixed anyway).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "fiber/core/thread_pool.hpp"
#include "fiber/losses/coarse_queue.hpp"
#include "fiber/losses/hard_negatives.hpp"
#include "fiber/losses/mlm_masking.hpp"

using namespace fiber;

namespace {
bool within(double count, double n, double p) { return std::abs(count - n * p) <= 5 * std::sqrt(n * p * (1 - p)) + 1; }
}  // namespace

TEST_CASE("mask_for_mlm: 15% of the ordinary tokens, 80/10/10, never a special token") {
  const std::int64_t B = 64, L = 40, V = 300;
  Tensor<std::int64_t> ids = Tensor<std::int64_t>::empty({B, L});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < L; ++i) ids.at({b, i}) = i == 0 ? 0 : i == 30 ? 2 : i > 30 ? 1 : 4 + (b * 7 + i) % 290;
  losses::MlmMaskingOptions o;
  o.mask_id = V - 1;
  o.vocab_size = V;
  o.special_ids = {0, 1, 2, 3, V - 1};
  Generator gen(11);
  const losses::MlmBatch m = losses::mask_for_mlm(ids, gen, o);
  double chosen = 0, masked = 0, unchanged = 0, ordinary = 0;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < L; ++i) {
      const std::int64_t id = ids.at({b, i}), label = m.labels.at({b, i}), now = m.ids.at({b, i});
      const bool special = id < 4;
      ordinary += !special;
      if (special) {
        CHECK(label == -100);
        CHECK(now == id);
        continue;
      }
      if (label == -100) {
        CHECK(now == id);
        continue;
      }
      CHECK(label == id);
      ++chosen;
      masked += now == V - 1;
      unchanged += now == id;
      CHECK((now >= 0 && now < V));
    }
  CHECK(within(chosen, ordinary, 0.15));
  CHECK(within(masked, chosen, 0.8));
  // unchanged: the 10% kept plus the random draws that hit the same id (1/V of the other 10%).
  CHECK(within(unchanged, chosen, 0.1 + 0.1 / V));

  // Reproducible from the seed and independent of the thread count.
  const int threads = num_threads();
  set_num_threads(1);
  Generator again(11);
  const losses::MlmBatch one = losses::mask_for_mlm(ids, again, o);
  set_num_threads(threads);
  CHECK(one.ids.to_vector() == m.ids.to_vector());
  CHECK(one.labels.to_vector() == m.labels.to_vector());
  Generator other(12);
  CHECK(losses::mask_for_mlm(ids, other, o).labels.to_vector() != m.labels.to_vector());
}

namespace {
// Draws negatives `draws` times for the 2 rows of sim ([2, 5], the first n columns candidates) and
// checks the frequencies: never the diagonal, never a column beyond n however large its logit,
// and each other candidate j of row b at (1 - share) softmax(sim[b, :n] without b)[j] + share / (n - 1).
void check_draw_frequencies(const Tensor<float>& sim, std::int64_t n, double share, std::uint64_t seed) {
  const std::int64_t draws = 20000;
  std::vector<std::vector<double>> counts(2, std::vector<double>(5, 0));
  Generator gen(seed);
  for (std::int64_t k = 0; k < draws; ++k) {
    const Tensor<std::int64_t> pick = losses::draw_hard_negatives(sim, n, gen, share);
    for (std::int64_t b = 0; b < 2; ++b) counts[std::size_t(b)][std::size_t(pick.at({b}))] += 1;
  }
  for (std::int64_t b = 0; b < 2; ++b) {
    double z = 0;
    for (std::int64_t j = 0; j < n; ++j) z += j == b ? 0 : std::exp(double(sim.at({b, j})));
    CHECK(counts[std::size_t(b)][std::size_t(b)] == 0);
    CHECK(counts[std::size_t(b)][4] == 0);
    for (std::int64_t j = 0; j < n; ++j)
      if (j != b) {
        const double p = (1 - share) * std::exp(double(sim.at({b, j}))) / z + share / double(n - 1);
        INFO("share " << share << ", row " << b << ", column " << j << ", expected " << p);
        CHECK(within(counts[std::size_t(b)][std::size_t(j)], double(draws), p));
      }
  }
}
}  // namespace

TEST_CASE("draw_hard_negatives: softmax weights over the valid candidates, never the diagonal") {
  // 2 rows, 5 columns of which 4 are candidates.
  const Tensor<float> sim = Tensor<float>::from_data({2, 5}, {1.0f, 0.0f, 2.0f, -1.0f, 50.0f,  //
                                                               3.0f, 1.0f, 0.5f, 0.0f, 50.0f});
  check_draw_frequencies(sim, 4, 0.0, 3);
  Generator gen(3);
  CHECK_THROWS_WITH_AS(losses::draw_hard_negatives(sim, 6, gen), doctest::Contains("cannot serve 6"), Error);
}

TEST_CASE("draw_hard_negatives with a uniform share: the mixture's frequencies; share 0 is the official draw") {
  // The softmax alone gives some candidates under 0.1 %; the mixture gives each at least share / 3.
  const Tensor<float> sim = Tensor<float>::from_data({2, 5}, {1.0f, 0.0f, 8.0f, -1.0f, 50.0f,  //
                                                               9.0f, 1.0f, 0.5f, 0.0f, 50.0f});
  const std::int64_t n = 4;
  for (const double share : {0.5, 1.0}) check_draw_frequencies(sim, n, share, 5);
  // Share 0 is the official draw, pick for pick: multinomial over softmax(sim[b, :n]) with the
  // diagonal zeroed and 1e-9 added to every weight, by the inverse CDF of one uniform per row;
  // computed here from the same uniforms (a second generator in the same state). Near-even
  // weights, so that a draw that used its uniform differently would pick other candidates.
  const Tensor<float> even = Tensor<float>::from_data({2, 5}, {0.2f, 0.0f, 0.4f, -0.3f, 50.0f,  //
                                                                0.5f, 0.0f, 0.1f, -0.2f, 50.0f});
  Generator gen(7), uniforms(7);
  for (int k = 0; k < 50; ++k) {
    const Tensor<std::int64_t> pick = losses::draw_hard_negatives(even, n, gen, 0.0);
    const Tensor<double> u = rand<double>({2}, uniforms);
    for (std::int64_t b = 0; b < 2; ++b) {
      double top = -INFINITY, z = 0, total = 0;
      for (std::int64_t j = 0; j < n; ++j) top = std::max(top, double(even.at({b, j})));
      for (std::int64_t j = 0; j < n; ++j) z += std::exp(double(even.at({b, j})) - top);
      std::vector<double> w(static_cast<std::size_t>(n));
      for (std::int64_t j = 0; j < n; ++j) {
        w[std::size_t(j)] = (j == b ? 0.0 : std::exp(double(even.at({b, j})) - top) / z) + 1e-9;
        total += w[std::size_t(j)];
      }
      std::int64_t want = n - 1;
      double acc = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        acc += w[std::size_t(j)];
        if (u.at({b}) * total < acc) {
          want = j;
          break;
        }
      }
      INFO("draw " << k << ", row " << b);
      CHECK(pick.at({b}) == want);
    }
  }
  Generator bad(1);
  CHECK_THROWS_WITH_AS(losses::draw_hard_negatives(sim, n, bad, 1.5), doctest::Contains("uniform share 1.5"), Error);
  CHECK_THROWS_WITH_AS(losses::draw_hard_negatives(sim, n, bad, -0.1), doctest::Contains("outside [0, 1]"), Error);
}

TEST_CASE("CoarseQueue: wraps around, keeps ids padded, counts every sample") {
  Generator gen(1);
  losses::CoarseQueue<float> q(5, 2, 4, 6, gen);
  CHECK(q.valid() == 0);
  auto batch = [](std::int64_t B, float base) {
    Tensor<float> f = Tensor<float>::empty({B, 2}), px = Tensor<float>::empty({B, 3, 4, 4});
    Tensor<std::int64_t> ids = Tensor<std::int64_t>::empty({B, 3}), m = Tensor<std::int64_t>::ones({B, 3});
    for (std::int64_t b = 0; b < B; ++b) {
      f.at({b, 0}) = base + float(b);
      f.at({b, 1}) = -(base + float(b));
      px.select(0, b).fill_(base + float(b));
      for (std::int64_t i = 0; i < 3; ++i) ids.at({b, i}) = std::int64_t(base) + b;
    }
    return std::tuple{f, px, ids, m};
  };
  auto [f1, p1, i1, m1] = batch(3, 10);
  q.enqueue(f1, f1, p1, i1, m1);
  auto [f2, p2, i2, m2] = batch(3, 20);
  q.enqueue(f2, f2, p2, i2, m2);
  CHECK(q.ptr == 1);
  CHECK(q.total == 6);
  CHECK(q.valid() == 5);
  // columns: [21+... wrapped] 0 <- sample 20+2 (the 6th), 1..2 <- 11, 12, 3..4 <- 20, 21
  const float want[] = {22, 11, 12, 20, 21};
  for (int c = 0; c < 5; ++c) {
    CHECK(q.image_feats.at({0, c}) == want[c]);
    CHECK(q.images.at({c, 2, 1, 1}) == want[c]);
    CHECK(q.text_ids.at({c, 0}) == std::int64_t(want[c]));
    CHECK(q.text_ids.at({c, 5}) == 1);    // padded with <pad>
    CHECK(q.text_masks.at({c, 5}) == 0);
  }
  Tensor<std::int64_t> too_long = Tensor<std::int64_t>::ones({3, 7});
  CHECK_THROWS_WITH_AS(q.enqueue(f1, f1, p1, too_long, too_long), doctest::Contains("<= 6"), Error);
}
