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

// B stored [N, K] (op(B) = Bᵀ): Bᵀ[k0 : k0 + kc, j0 : j0 + n_valid] into a [kc, width] panel
// (width a multiple of the vector width, n_valid <= width), a transpose of n_valid rows of kc
// contiguous values.
template <class T>
inline void pack_bt_panel(const T* B, std::int64_t ldb, std::int64_t k0, std::int64_t j0, std::int64_t kc,
                          std::int64_t n_valid, std::int64_t width, T* dst) {
  transpose(B + j0 * ldb + k0, ldb, n_valid, kc, dst, width);
  if (n_valid < width)
    for (std::int64_t k = 0; k < kc; ++k)
      for (std::int64_t j = n_valid; j < width; ++j) dst[k * width + j] = T(0);
}

// op(B)[k0 : k0 + kc, j0 : j0 + n] as consecutive [kc, NR] panels, panel q at dst + q * kc * NR;
// the last one holds the remaining columns in last_width (a multiple of the vector width).
// B stored [K, N] is read row by row across all the panels: long contiguous reads, which the
// hardware prefetcher follows far better than one panel's short rows at a large stride.
template <class T>
inline void pack_b_panels(Trans tb, const T* B, std::int64_t ldb, std::int64_t k0, std::int64_t kc, std::int64_t j0,
                          std::int64_t n, std::int64_t NR, std::int64_t last_width, T* dst) {
  using V = Vec<T>;
  constexpr int W = vec_width<T>;
  const std::int64_t count = (n + NR - 1) / NR;
  const std::int64_t last_valid = n - (count - 1) * NR;
  if (tb == Trans::yes) {
    for (std::int64_t q = 0; q < count; ++q) {
      const bool last = q + 1 == count;
      pack_bt_panel(B, ldb, k0, j0 + q * NR, kc, last ? last_valid : NR, last ? last_width : NR, dst + q * kc * NR);
    }
    return;
  }
  const std::int64_t full = last_valid == last_width ? count : count - 1;  // panels copied by vectors
  const T* src = B + k0 * ldb + j0;
  for (std::int64_t k = 0; k < kc; ++k, src += ldb) {
    for (std::int64_t q = 0; q < full; ++q) {
      const std::int64_t width = q + 1 == count ? last_width : NR;
      T* out = dst + q * kc * NR + k * width;
      for (std::int64_t j = 0; j < width; j += W) V::load_unaligned(src + q * NR + j).store_aligned(out + j);
    }
    if (full < count) {
      // The last panel, not a whole number of vectors: scalar copy and zeros.
      T* out = dst + full * kc * NR + k * last_width;
      const T* in = src + full * NR;
      std::int64_t j = 0;
      for (; j < last_valid; ++j) out[j] = in[j];
      for (; j < last_width; ++j) out[j] = T(0);
    }
  }
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
