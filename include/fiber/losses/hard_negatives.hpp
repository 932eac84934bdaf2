#pragma once
// ITM hard negatives drawn from the ITC similarities (FIBER_SPEC §2; official compute_itc): for
// each sample b, one candidate among the batch and the filled part of the queue, drawn with
// probability softmax(sim[b, :n]) with the diagonal zeroed (+1e-9 on every weight, as the
// official multinomial call), n = B + queue.valid().
//   image negatives for text b:  drawn from sim_t2i[b]   (text b against all images)
//   text negatives for image b:  drawn from sim_i2t[b]
// The draw uses one uniform number per row from a Generator (inverse CDF in double), so it is
// reproducible from the seed and independent of the thread count.
//
// uniform_share s (ours; 0 is the official draw, bit for bit) mixes easy negatives in: each row's
// weights become (1 - s) softmax + s uniform over the n - 1 other candidates. Trained from
// scratch with the official draw alone, ITM stayed at chance in some of our runs
// (docs/pretraining.md).
#include <cmath>
#include <cstdint>
#include <vector>

#include "fiber/core/error.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/core/tensor.hpp"
#include "fiber/losses/coarse_queue.hpp"
#include "fiber/ops/join.hpp"

namespace fiber::losses {

// sim: [B, >= n] logits; returns [B] candidate indices in [0, n), never b itself when n > 1.
template <class T>
Tensor<std::int64_t> draw_hard_negatives(const Tensor<T>& sim, std::int64_t n, Generator& gen, double uniform_share = 0) {
  FIBER_CHECK(sim.dim() == 2 && n >= 1 && n <= sim.size(1) && sim.size(0) <= n, "draw_hard_negatives: similarities ",
              sim.shape(), " cannot serve ", n, " candidates");
  FIBER_CHECK(uniform_share >= 0 && uniform_share <= 1, "draw_hard_negatives: uniform share ", uniform_share,
              " is outside [0, 1]");
  const double uniform = n > 1 ? uniform_share / double(n - 1) : 0.0;  // each other candidate's uniform weight
  const std::int64_t B = sim.size(0);
  const Tensor<double> u = rand<double>({B}, gen);
  Tensor<std::int64_t> out = Tensor<std::int64_t>::empty({B});
  std::vector<double> w(static_cast<std::size_t>(n));
  for (std::int64_t b = 0; b < B; ++b) {
    double top = -INFINITY;
    for (std::int64_t j = 0; j < n; ++j) top = std::max(top, double(sim.at({b, j})));
    double z = 0;
    for (std::int64_t j = 0; j < n; ++j) z += std::exp(double(sim.at({b, j})) - top);
    double total = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      const double p = j == b ? 0.0 : (1 - uniform_share) * (std::exp(double(sim.at({b, j})) - top) / z) + uniform;
      w[std::size_t(j)] = p + 1e-9;
      total += w[std::size_t(j)];
    }
    const double target = u.at({b}) * total;
    double acc = 0;
    std::int64_t pick = n - 1;
    for (std::int64_t j = 0; j < n; ++j) {
      acc += w[std::size_t(j)];
      if (target < acc) {
        pick = j;
        break;
      }
    }
    out.at({b}) = pick;
  }
  return out;
}

// Rows `index` of the batch rows followed by the queue's valid rows: [B, ...] + [Qv, ...].
template <class E>
Tensor<E> take_candidates(const Tensor<E>& batch_rows, const Tensor<E>& queue_rows, const Tensor<std::int64_t>& index) {
  const std::int64_t B = batch_rows.size(0);
  Shape shape = batch_rows.shape();
  shape[0] = index.size(0);
  Tensor<E> out = Tensor<E>::empty(shape);
  for (std::int64_t i = 0; i < index.size(0); ++i) {
    const std::int64_t j = index.at({i});
    FIBER_CHECK(j >= 0 && j < B + (queue_rows.defined() ? queue_rows.size(0) : 0), "take_candidates: index ", j,
                " outside the ", B, " batch rows and the queue");
    out.select(0, i).copy_(j < B ? batch_rows.select(0, j) : queue_rows.select(0, j - B));
  }
  return out;
}

}  // namespace fiber::losses
