#pragma once
// In-register transposes of a W x W block (W = vector width), for packing operands that are stored
// with K contiguous (B transposed, a linear layer's weight [N, K]) into the k-major panels the
// GEMM microkernel reads. xsimd 8.1 has no cross-lane transpose, so these use the intrinsics of
// the instruction set the build targets; other targets use the scalar loop.
#include <cstdint>
#include <type_traits>

#include "fiber/backend/cpu/simd.hpp"

#if !defined(FIBER_SIMD_SCALAR) && (defined(__AVX512F__) || defined(__AVX2__))
#include <immintrin.h>
#endif

namespace fiber::cpu::detail {

// Side of the block transpose_block<T> handles in registers, 0 when it has none for T.
template <class T>
inline constexpr int transpose_block_size =
#if !defined(FIBER_SIMD_SCALAR) && defined(__AVX512F__)
    std::is_same_v<T, float> ? 16 : 0;
#elif !defined(FIBER_SIMD_SCALAR) && defined(__AVX2__)
    std::is_same_v<T, float> ? 8 : 0;
#else
    0;
#endif

// dst[c * ld_dst + r] = src[r * ld_src + c] for r, c < transpose_block_size<T>.
template <class T>
inline void transpose_block(const T* src, std::int64_t ld_src, T* dst, std::int64_t ld_dst) {
  static_assert(transpose_block_size<T> > 0, "no register transpose for this type and target");
#if !defined(FIBER_SIMD_SCALAR) && defined(__AVX512F__)
  // The maskz forms with a full mask are the same instructions; the plain intrinsics start from
  // _mm512_undefined_ps(), which GCC 12 reports as uninitialized.
  const __mmask16 all = 0xFFFF;
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ld_src);
  // Interleave pairs of rows, then pairs of pairs within 128-bit lanes...
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_maskz_shuffle_ps(all, t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_maskz_shuffle_ps(all, t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_maskz_shuffle_ps(all, t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_maskz_shuffle_ps(all, t[i + 1], t[i + 3], 0xEE);
  }
  // ...then 128-bit lanes across groups of four rows, then across groups of eight.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_maskz_shuffle_f32x4(all, r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_maskz_shuffle_f32x4(all, r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 8], 0xDD);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ld_dst, r[i]);
#elif !defined(FIBER_SIMD_SCALAR) && defined(__AVX2__)
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * ld_dst, t[i]);
#else
  (void)src, (void)ld_src, (void)dst, (void)ld_dst;
#endif
}

// dst[c * ld_dst + r] = src[r * ld_src + c] for r < rows, c < cols: register blocks where the
// target has them, scalar elsewhere. Kept out of line (called once per panel): constants
// propagated into it make GCC 12 warn about loops it then cannot bound.
template <class T>
#if defined(__clang__)
[[gnu::noinline]]
#else
[[gnu::noipa]]
#endif
void transpose(const T* src, std::int64_t ld_src, std::int64_t rows, std::int64_t cols, T* dst,
                      std::int64_t ld_dst) {
  constexpr int S = transpose_block_size<T>;
  // Scalar part: row r's values [c0, cols) to column r of dst.
  auto scalar_rows = [&](std::int64_t r_begin, std::int64_t r_end, std::int64_t c0) {
    for (std::int64_t r = r_begin; r < r_end; ++r) {
      const T* row = src + r * ld_src;
      T* column = dst + r;
      for (std::int64_t c = c0; c < cols; ++c) column[c * ld_dst] = row[c];
    }
  };
  std::int64_t r0 = 0;
  if constexpr (S > 0) {
    for (; r0 + S <= rows; r0 += S) {
      std::int64_t c0 = 0;
      for (; c0 + S <= cols; c0 += S) transpose_block(src + r0 * ld_src + c0, ld_src, dst + c0 * ld_dst + r0, ld_dst);
      scalar_rows(r0, r0 + S, c0);
    }
  }
  scalar_rows(r0, rows, 0);
}

}  // namespace fiber::cpu::detail
