#pragma once
// Packing of GEMM operands into the layouts the microkernel reads:
//   B panel [kc, width]: dst[k * width + j] = op(B)[k0 + k, j0 + j], zero beyond the valid columns;
//   A panel [kc, MR]:    dst[k * MR + i]    = op(A)[i0 + i, k0 + k], zero beyond the valid rows.
// Panels are contiguous and 64-byte aligned, so the kernel streams them with aligned loads.
#include <algorithm>
#include <cstdint>

#include "fiber/backend/cpu/gemm_args.hpp"
#include "fiber/backend/cpu/simd.hpp"
#include "fiber/backend/cpu/transpose_block.hpp"

namespace fiber::cpu::detail {

// op(B)[k0 : k0 + kc, j0 : j0 + n_valid] into a [kc, width] panel (width a multiple of the vector
// width, n_valid <= width).
template <class T>
inline void pack_b_panel(Trans tb, const T* B, std::int64_t ldb, std::int64_t k0, std::int64_t j0, std::int64_t kc,
                         std::int64_t n_valid, std::int64_t width, T* dst) {
  using V = Vec<T>;
  constexpr int W = vec_width<T>;
  if (tb == Trans::no) {
    // B: [K, N], row k of the panel is contiguous in memory.
    const T* src = B + k0 * ldb + j0;
    if (n_valid == width) {
      // Rows are short (width values) and far apart: prefetch a few rows ahead, the hardware
      // prefetcher does not follow this pattern.
      constexpr std::int64_t ahead = 8;
      constexpr std::int64_t line = 64 / sizeof(T);
      for (std::int64_t k = 0; k < kc; ++k, src += ldb, dst += width) {
        if (k + ahead < kc)
          for (std::int64_t j = 0; j < width; j += line) __builtin_prefetch(src + ahead * ldb + j);
        for (std::int64_t j = 0; j < width; j += W) V::load_unaligned(src + j).store_aligned(dst + j);
      }
    } else {
      for (std::int64_t k = 0; k < kc; ++k, src += ldb, dst += width) {
        std::int64_t j = 0;
        for (; j < n_valid; ++j) dst[j] = src[j];
        for (; j < width; ++j) dst[j] = T(0);
      }
    }
    return;
  }
  // B stored [N, K]: the panel is a transpose of n_valid rows of kc contiguous values.
  transpose(B + j0 * ldb + k0, ldb, n_valid, kc, dst, width);
  if (n_valid < width)
    for (std::int64_t k = 0; k < kc; ++k)
      for (std::int64_t j = n_valid; j < width; ++j) dst[k * width + j] = T(0);
}

// op(A)[i0 : i0 + m_valid, k0 : k0 + kc] into a [kc, MR] panel (m_valid <= MR).
template <class T>
inline void pack_a_panel(Trans ta, const T* A, std::int64_t lda, std::int64_t i0, std::int64_t k0, std::int64_t kc,
                         std::int64_t m_valid, int MR, T* dst) {
  if (ta == Trans::yes) {
    // A stored [K, M]: MR consecutive values per k.
    const T* src = A + k0 * lda + i0;
    for (std::int64_t k = 0; k < kc; ++k, src += lda, dst += MR) {
      std::int64_t i = 0;
      for (; i < m_valid; ++i) dst[i] = src[i];
      for (; i < MR; ++i) dst[i] = T(0);
    }
    return;
  }
  transpose(A + i0 * lda + k0, lda, m_valid, kc, dst, MR);
  if (m_valid < MR)
    for (std::int64_t k = 0; k < kc; ++k)
      for (std::int64_t i = m_valid; i < MR; ++i) dst[k * MR + i] = T(0);
}

}  // namespace fiber::cpu::detail
