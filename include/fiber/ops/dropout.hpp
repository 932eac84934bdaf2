#pragma once
// dropout and drop_path (stochastic depth), with a seeded counter-based generator.
//   Generator gen(seed);
//   Var<float> y = dropout(x, 0.1, training, gen);     // each element kept with probability 1 - p
//   Var<float> z = drop_path(x, 0.1, training, gen);   // each sample (dim 0) kept with probability 1 - p
// Kept values are scaled by 1 / (1 - p); p = 1 drops everything (zeros, as PyTorch and timm);
// p = 0 or !training returns x itself (no copy, no draw). p must lie in [0, 1].
//
// dropout: element i (row-major over x's shape) is kept when u_i >= p, with u_i a uniform float
// (24 random bits) of the generator's Philox stream (core/rng.hpp): element 64 k + 16 w + j
// takes word w of counter offset + 16 k + j. The mask thus depends only on (seed, offset, i):
// the same for any thread count or split of the work. The backward keeps no mask: it
// regenerates the same decisions from the saved seed and offset. One draw advances the
// generator by 16 counters per 64 elements (ceil(numel / 64) * 16). Dropped elements are
// multiplied by 0 (so a NaN stays NaN, as in PyTorch).
//
// drop_path (timm's DropPath): one uniform per sample, u_b < 1 - p keeps sample b (timm draws
// bernoulli(1 - p)). The per-sample scale [B, 1, ..., 1] is kept for the backward (B values).
// The random streams differ from PyTorch's: tests check rates, determinism and gradients, not
// PyTorch's masks.
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "fiber/autograd/var.hpp"
#include "fiber/core/rng.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber {

namespace detail {
inline void check_drop_probability(double p, const char* op) {
  FIBER_CHECK(p >= 0.0 && p <= 1.0, op, ": drop probability must lie in [0, 1], got ", p);
}

// dst[i] = src[i] * (keep(i) ? scale : 0) for i < n; src and dst contiguous (may alias). Element
// i = 64 k + 16 w + j takes word w of Philox(seed) counter offset + 16 k + j: each piece of 64
// elements is one vectorised philox4x32_16 call whose output, read in order, is the piece's
// random words. Pieces depend only on i, so the result is the same for any thread count.
template <class T>
void dropout_apply(const T* src, T* dst, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double p) {
  const std::array<std::uint32_t, 2> key = Generator(seed).key();
  const float threshold = static_cast<float>(p);
  const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  const std::int64_t pieces = (n + 63) / 64;
  parallel_for(0, pieces, 512, [=](std::int64_t b0, std::int64_t b1) {
    alignas(64) std::uint32_t w[4][16];
    for (std::int64_t b = b0; b < b1; ++b) {
      detail::philox4x32_16(offset + static_cast<std::uint64_t>(b) * 16, key, w);
      const std::uint32_t* u = &w[0][0];
      const std::int64_t first = b * 64, count = std::min<std::int64_t>(64, n - first);
      // A multiply, not a select: NaN or inf dropped gives NaN, as PyTorch's x * mask / (1 - p).
      for (std::int64_t t = 0; t < count; ++t)
        dst[first + t] = src[first + t] * (float(u[t] >> 8) * 0x1.0p-24f >= threshold ? scale : T(0));
    }
  });
}
}  // namespace detail

template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& gen) {
  static_assert(std::is_floating_point_v<T>, "dropout: needs a floating-point tensor");
  FIBER_CHECK(x.defined(), "dropout: undefined input");
  detail::check_drop_probability(p, "dropout");
  if (!training || p == 0.0) return x;
  const Tensor<T> xc = x.contiguous();
  Tensor<T> out = Tensor<T>::empty(x.shape());
  const std::uint64_t offset = gen.offset();
  detail::dropout_apply(xc.data(), out.data(), x.numel(), gen.seed(), offset, p);
  gen.advance(static_cast<std::uint64_t>((x.numel() + 63) / 64 * 16));
  return out;
}

template <class T>
Var<T> dropout(const Var<T>& x, double p, bool training, Generator& gen) {
  detail::check_drop_probability(p, "dropout");
  if (!training || p == 0.0) return x;
  const std::uint64_t seed = gen.seed(), offset = gen.offset();
  Tensor<T> out = dropout(x.value(), p, training, gen);
  if (!needs_graph(x)) return Var<T>(std::move(out));
  return record("dropout", out, {&x}, [seed, offset, p](const Tensor<T>& g, GradNeeds) {
    const Tensor<T> gc = g.contiguous();
    Tensor<T> gx = Tensor<T>::empty(g.shape());
    detail::dropout_apply(gc.data(), gx.data(), g.numel(), seed, offset, p);
    return std::vector<Tensor<T>>{gx};
  });
}

namespace detail {
// [B, 1, ..., 1] (x's rank): 1 / (1 - p) for kept samples, 0 for dropped ones.
template <class T>
Tensor<T> drop_path_scale(const Shape& x, double p, Generator& gen) {
  FIBER_CHECK(x.rank() >= 1, "drop_path: input needs a batch dimension, got shape ", x);
  Shape s = Shape::filled(x.rank(), 1);
  s[0] = x[0];
  const Tensor<double> u = rand<double>({x[0]}, gen);
  Tensor<T> scale = Tensor<T>::empty(s);
  const T kept = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  for (std::int64_t b = 0; b < x[0]; ++b) scale.data()[b] = u.data()[b] < 1.0 - p ? kept : T(0);
  return scale;
}
}  // namespace detail

template <class T>
Tensor<T> drop_path(const Tensor<T>& x, double p, bool training, Generator& gen) {
  static_assert(std::is_floating_point_v<T>, "drop_path: needs a floating-point tensor");
  FIBER_CHECK(x.defined(), "drop_path: undefined input");
  detail::check_drop_probability(p, "drop_path");
  if (!training || p == 0.0) return x;
  return Tensor<T>(x * detail::drop_path_scale<T>(x.shape(), p, gen));
}

template <class T>
Var<T> drop_path(const Var<T>& x, double p, bool training, Generator& gen) {
  detail::check_drop_probability(p, "drop_path");
  if (!training || p == 0.0) return x;
  return Var<T>(x * detail::drop_path_scale<T>(x.shape(), p, gen));
}

}  // namespace fiber
