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

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

// philox4x32 of the 16 counters n0, n0 + 1, ..., n0 + 15 (high counter words 0) under one key:
// out[w][i] is word w of counter n0 + i. The same values as 16 calls of philox4x32, written as
// one AVX-512 register per word where the target has it (plain loops elsewhere).
inline void philox4x32_16(std::uint64_t n0, std::array<std::uint32_t, 2> key, std::uint32_t (&out)[4][16]) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  std::uint32_t c0[16], c1[16], c2[16], c3[16];
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t n = n0 + static_cast<std::uint64_t>(i);
    c0[i] = std::uint32_t(n);
    c1[i] = std::uint32_t(n >> 32);
    c2[i] = 0;
    c3[i] = 0;
  }
  std::uint32_t k0 = key[0], k1 = key[1];
#if defined(__AVX512F__)
  // 16 lanes in one register per word. A round's 32x32->64 products: the low halves by vpmulld,
  // the high halves from vpmuludq of the even lanes and of the odd lanes (shifted down).
  __m512i v0 = _mm512_loadu_si512(c0), v1 = _mm512_loadu_si512(c1), v2 = _mm512_loadu_si512(c2),
          v3 = _mm512_loadu_si512(c3);
  const __m512i m0 = _mm512_set1_epi32(int(kMul0)), m1 = _mm512_set1_epi32(int(kMul1));
  auto mulhi = [](__m512i a, __m512i m) {
    const __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(a, m), 32);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    return _mm512_mask_blend_epi32(__mmask16(0xAAAA), even, odd);
  };
  for (int round = 0; round < 10; ++round) {
    const __m512i a = _mm512_xor_si512(_mm512_xor_si512(mulhi(v2, m1), v1), _mm512_set1_epi32(int(k0)));
    const __m512i b = _mm512_xor_si512(_mm512_xor_si512(mulhi(v0, m0), v3), _mm512_set1_epi32(int(k1)));
    v1 = _mm512_mullo_epi32(v2, m1);
    v3 = _mm512_mullo_epi32(v0, m0);
    v0 = a;
    v2 = b;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  _mm512_storeu_si512(out[0], v0);
  _mm512_storeu_si512(out[1], v1);
  _mm512_storeu_si512(out[2], v2);
  _mm512_storeu_si512(out[3], v3);
#else
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 16; ++i) {
      const std::uint64_t p0 = std::uint64_t(kMul0) * c0[i], p1 = std::uint64_t(kMul1) * c2[i];
      const std::uint32_t a = std::uint32_t(p1 >> 32) ^ c1[i] ^ k0, b = std::uint32_t(p0 >> 32) ^ c3[i] ^ k1;
      c0[i] = a;
      c1[i] = std::uint32_t(p1);
      c2[i] = b;
      c3[i] = std::uint32_t(p0);
    }
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  for (int i = 0; i < 16; ++i) {
    out[0][i] = c0[i];
    out[1][i] = c1[i];
    out[2][i] = c2[i];
    out[3][i] = c3[i];
  }
#endif
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
  // The key of this generator's Philox stream (from the seed).
  std::array<std::uint32_t, 2> key() const { return {std::uint32_t(seed_), std::uint32_t(seed_ >> 32)}; }
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
