#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11). Element i of a draw comes
// from counter (offset + i/4), lane i%4, so values depend only on (seed, offset, i): the same for
// any thread count and any split of the work. Each draw advances the generator's offset.
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <type_traits>

#include "fiber/core/tensor.hpp"
#include "fiber/core/thread_pool.hpp"

namespace fiber {

namespace detail {
inline std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t(kMul0) * ctr[0], p1 = std::uint64_t(kMul1) * ctr[2];
    ctr = {std::uint32_t(p1 >> 32) ^ ctr[1] ^ key[0], std::uint32_t(p1), std::uint32_t(p0 >> 32) ^ ctr[3] ^ key[1],
           std::uint32_t(p0)};
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  return ctr;
}

// Uniform in [0, 1) from 24 (float) or 53 (double) random bits.
inline float unit_float(std::uint32_t x) { return float(x >> 8) * 0x1.0p-24f; }
inline double unit_double(std::uint32_t hi, std::uint32_t lo) {
  return double(((std::uint64_t(hi) << 32) | lo) >> 11) * 0x1.0p-53;
}
}  // namespace detail

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(std::uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }

  // Four 32-bit words for counter `c` relative to the current offset.
  std::array<std::uint32_t, 4> block(std::uint64_t c) const {
    const std::uint64_t n = offset_ + c;
    return detail::philox4x32({std::uint32_t(n), std::uint32_t(n >> 32), 0u, 0u},
                              {std::uint32_t(seed_), std::uint32_t(seed_ >> 32)});
  }
  // Reserves `blocks` counters for one draw.
  void advance(std::uint64_t blocks) { offset_ += blocks; }

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

// The process-wide default generator (seed 0 until manual_seed is called).
inline Generator& default_generator() {
  static Generator g;
  return g;
}
inline void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

namespace detail {
// Fills n values; each block of 4 words yields `per_block` values through make(words, lane).
template <class T, class Make>
void fill_random(T* out, std::int64_t n, Generator& gen, int per_block, Make make) {
  const std::int64_t blocks = (n + per_block - 1) / per_block;
  parallel_for(0, blocks, 1024, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const auto w = gen.block(static_cast<std::uint64_t>(b));
      for (int lane = 0; lane < per_block && b * per_block + lane < n; ++lane) out[b * per_block + lane] = make(w, lane);
    }
  });
  gen.advance(static_cast<std::uint64_t>(blocks));
}
}  // namespace detail

// Uniform values in [low, high).
template <class T>
Tensor<T> rand(const Shape& shape, Generator& gen = default_generator(), T low = T(0), T high = T(1)) {
  static_assert(std::is_floating_point_v<T>, "rand: floating-point element type required");
  Tensor<T> t = Tensor<T>::empty(shape);
  const T scale = high - low;
  if constexpr (std::is_same_v<T, float>) {
    detail::fill_random(t.data(), t.numel(), gen, 4,
                        [&](const auto& w, int lane) { return low + scale * detail::unit_float(w[lane]); });
  } else {
    detail::fill_random(t.data(), t.numel(), gen, 2, [&](const auto& w, int lane) {
      return low + scale * static_cast<T>(detail::unit_double(w[2 * lane], w[2 * lane + 1]));
    });
  }
  return t;
}

// Normal values N(mean, std^2), by Box-Muller on pairs of uniforms.
template <class T>
Tensor<T> randn(const Shape& shape, Generator& gen = default_generator(), T mean = T(0), T std = T(1)) {
  static_assert(std::is_floating_point_v<T>, "randn: floating-point element type required");
  Tensor<T> t = Tensor<T>::empty(shape);
  auto box_muller = [&](double u1, double u2, int which) {
    const double r = std::sqrt(-2.0 * std::log1p(-u1));  // u1 in [0,1): 1-u1 in (0,1]
    const double a = 2.0 * std::numbers::pi * u2;
    return static_cast<T>(mean + std * (which == 0 ? r * std::cos(a) : r * std::sin(a)));
  };
  if constexpr (std::is_same_v<T, float>) {
    detail::fill_random(t.data(), t.numel(), gen, 4, [&](const auto& w, int lane) {
      const int pair = lane / 2;
      return box_muller(detail::unit_float(w[2 * pair]), detail::unit_float(w[2 * pair + 1]), lane % 2);
    });
  } else {
    detail::fill_random(t.data(), t.numel(), gen, 2, [&](const auto& w, int lane) {
      return box_muller(detail::unit_double(w[0], w[1]), detail::unit_double(w[2], w[3]), lane);
    });
  }
  return t;
}

}  // namespace fiber
